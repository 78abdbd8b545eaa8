#ifndef TRIBUTARY_CRDKAFKA_SHIM_H
#define TRIBUTARY_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#endif

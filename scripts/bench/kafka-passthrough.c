/*
 * kafka-passthrough: the Kafka ceiling of the Sessionizer benchmark (scripts/bench-sessionizer).
 *
 * The Sessionizer is, from Kafka's point of view, a consume → transform → produce loop. This
 * program is that loop without the transform: plain librdkafka, consuming a topic and
 * producing every message's key and value, unchanged, to another topic with the same producer
 * settings as Tributary's KafkaProducer. Whatever the Sessionizer reaches as a share of this
 * rate is the share of the broker/client ceiling it gets, on the same machine in the same run.
 *
 *   kafka-passthrough produce     -b BROKERS -t TOPIC -f FILE
 *       Reads FILE, one message per line as "key<TAB>value", and produces the messages to
 *       TOPIC (the key picks the partition, as in the Collector). Prints a RESULT line and,
 *       per partition, how many messages were delivered and the next offset after them, from
 *       the delivery reports (the broker's high watermarks are not trusted: Tansu under-reports
 *       them for multi-record batches).
 *
 *   kafka-passthrough passthrough -b BROKERS -i INPUT -o OUTPUT -n N [-g GROUP] [-T SECONDS]
 *       Joins a fresh consumer group (default: a unique name), reads INPUT from its earliest
 *       offset and produces each message's key + value to OUTPUT, until N messages have been
 *       passed on and all of them acknowledged. Reports messages/s from the first message
 *       consumed to the last delivery report (the group join, ~3 s on Tansu, is not timed),
 *       then commits the consumed offsets.
 *
 * Output (stdout), one line each, `key=value` fields for scripts:
 *   RESULT mode=… messages=… delivered=… failed=… bytes=… seconds=… rate=… cpu_seconds=…
 *   PARTITION partition=… delivered=… next_offset=…          (produce mode only)
 * Progress and errors go to stderr. Exit status 0 only when every message was delivered.
 *
 * Build: cc -O2 -o kafka-passthrough kafka-passthrough.c -I<librdkafka>/include \
 *          -L<librdkafka>/lib -Wl,-rpath,<librdkafka>/lib -lrdkafka
 * (librdkafka >= 2.8: older versions cannot talk to Tansu.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_PARTITIONS 1024

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds of this process (all librdkafka threads included). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
         + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "kafka-passthrough: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) die(key, err);
}

/* ------------------------------------------------------------------ delivery reports */

/* Filled by the delivery report callback, which runs inside rd_kafka_poll/flush on the
 * main thread: no locking needed. */
static struct {
    long delivered, failed;
    double last_at;                        /* when the latest report arrived */
    long per_partition[MAX_PARTITIONS];    /* delivered messages */
    int64_t next_offset[MAX_PARTITIONS];   /* highest delivered offset + 1 */
    int max_partition;
    char first_error[256];
} reports = { .max_partition = -1 };

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    reports.last_at = now_seconds();
    if (m->err) {
        if (reports.failed++ == 0)
            snprintf(reports.first_error, sizeof reports.first_error, "%s", rd_kafka_err2str(m->err));
        return;
    }
    reports.delivered++;
    if (m->partition >= 0 && m->partition < MAX_PARTITIONS) {
        reports.per_partition[m->partition]++;
        if (m->offset + 1 > reports.next_offset[m->partition]) reports.next_offset[m->partition] = m->offset + 1;
        if (m->partition > reports.max_partition) reports.max_partition = m->partition;
    }
}

/* The settings of Tributary's KafkaProducer (Shared/Kafka/KafkaProducer.swift): an idempotent
 * producer waiting for all in-sync replicas, lingering 2 ms to fill batches, lz4. */
static rd_kafka_t *new_producer(const char *brokers) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    set(conf, "bootstrap.servers", brokers);
    set(conf, "client.id", "bench-passthrough");
    set(conf, "log.connection.close", "false");
    set(conf, "allow.auto.create.topics", "false");
    set(conf, "enable.idempotence", "true");
    set(conf, "acks", "all");
    set(conf, "linger.ms", "2");
    set(conf, "compression.type", "lz4");
    set(conf, "message.timeout.ms", "10000");
    set(conf, "queue.buffering.max.messages", "1000000");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("producer", err);
    return rk;
}

/* Produces one message, waiting (and serving delivery reports) while the local queue is full. */
static void produce(rd_kafka_topic_t *topic, rd_kafka_t *rk, const void *key, size_t key_len,
                    const void *value, size_t value_len) {
    for (;;) {
        /* F_COPY: the consumed message (or the line buffer) is freed before delivery. */
        if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             (void *)value, value_len, key, key_len, NULL) == 0) return;
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(err));
        rd_kafka_poll(rk, 10);
    }
}

/* Waits for every outstanding delivery report. */
static void flush_all(rd_kafka_t *rk) {
    while (rd_kafka_outq_len(rk) > 0 && !stopping) rd_kafka_flush(rk, 1000);
}

static void print_result(const char *mode, long messages, long bytes, double seconds, double cpu) {
    printf("RESULT mode=%s messages=%ld delivered=%ld failed=%ld bytes=%ld seconds=%.3f rate=%.1f cpu_seconds=%.3f\n",
           mode, messages, reports.delivered, reports.failed, bytes, seconds,
           seconds > 0 ? reports.delivered / seconds : 0.0, cpu);
    if (reports.failed) fprintf(stderr, "kafka-passthrough: %ld deliveries failed, first: %s\n", reports.failed, reports.first_error);
}

/* ------------------------------------------------------------------ produce mode */

static int run_produce(const char *brokers, const char *topic_name, const char *file) {
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!in) die(file, strerror(errno));
    rd_kafka_t *rk = new_producer(brokers);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, topic_name, NULL);

    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    long messages = 0, bytes = 0;
    double started = 0, cpu_started = 0;
    while (!stopping && (length = getline(&line, &capacity, in)) > 0) {
        if (line[length - 1] == '\n') line[--length] = '\0';
        if (length == 0) continue;
        char *tab = memchr(line, '\t', (size_t)length);
        if (!tab) die("a line without a TAB between key and value in", file);
        if (messages == 0) { started = now_seconds(); cpu_started = cpu_seconds(); }
        size_t key_len = (size_t)(tab - line), value_len = (size_t)(length - (ssize_t)key_len - 1);
        produce(topic, rk, line, key_len, tab + 1, value_len);
        messages++;
        bytes += (long)value_len;
        rd_kafka_poll(rk, 0);  /* serve delivery reports as they come */
    }
    free(line);
    if (in != stdin) fclose(in);
    flush_all(rk);
    double seconds = reports.last_at > started ? reports.last_at - started : 0;
    print_result("produce", messages, bytes, seconds, cpu_seconds() - cpu_started);
    for (int p = 0; p <= reports.max_partition; p++)
        printf("PARTITION partition=%d delivered=%ld next_offset=%lld\n",
               p, reports.per_partition[p], (long long)reports.next_offset[p]);
    rd_kafka_topic_destroy(topic);
    rd_kafka_destroy(rk);
    return reports.delivered == messages && messages > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ passthrough mode */

/* The settings of Tributary's KafkaConsumer (Shared/Kafka/KafkaConsumer.swift), except that
 * offsets are stored by librdkafka as messages are handed out (auto.offset.store, the
 * default) and committed once at the end: nothing to compare with the Sessionizer's Postgres
 * checkpoints, which are part of what it is measured with. */
static rd_kafka_t *new_consumer(const char *brokers, const char *group) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    set(conf, "bootstrap.servers", brokers);
    set(conf, "client.id", "bench-passthrough");
    set(conf, "log.connection.close", "false");
    set(conf, "allow.auto.create.topics", "false");
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.partition.eof", "false");
    set(conf, "session.timeout.ms", "6000");
    set(conf, "heartbeat.interval.ms", "1000");
    set(conf, "fetch.wait.max.ms", "50");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("consumer", err);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int run_passthrough(const char *brokers, const char *input, const char *output, long n,
                           const char *group, int idle_timeout) {
    rd_kafka_t *consumer = new_consumer(brokers, group);
    rd_kafka_t *producer = new_producer(brokers);
    rd_kafka_topic_t *out = rd_kafka_topic_new(producer, output, NULL);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, input, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) die("subscribe", rd_kafka_err2str(err));

    long consumed = 0, bytes = 0;
    double started = 0, cpu_started = 0, last_message = now_seconds();
    while (consumed < n && !stopping) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
        rd_kafka_poll(producer, 0);  /* serve delivery reports between messages */
        if (!m) {
            if (now_seconds() - last_message > idle_timeout) {
                fprintf(stderr, "kafka-passthrough: no message for %d s after %ld of %ld\n", idle_timeout, consumed, n);
                break;
            }
            continue;
        }
        if (m->err) {
            fprintf(stderr, "kafka-passthrough: consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last_message = now_seconds();
        if (consumed == 0) {
            /* The clock starts at the first message: the group join is not part of the rate. */
            started = last_message;
            cpu_started = cpu_seconds();
            fprintf(stderr, "kafka-passthrough: first message consumed\n");
        }
        produce(out, producer, m->key, m->key_len, m->payload, m->len);
        consumed++;
        bytes += (long)m->len;
        rd_kafka_message_destroy(m);
    }
    flush_all(producer);
    double seconds = reports.last_at > started ? reports.last_at - started : 0;
    double cpu = consumed ? cpu_seconds() - cpu_started : 0;
    print_result("passthrough", consumed, bytes, seconds, cpu);
    fflush(stdout);

    err = rd_kafka_commit(consumer, NULL, 0);  /* synchronous: the consumed positions */
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) fprintf(stderr, "kafka-passthrough: commit: %s\n", rd_kafka_err2str(err));
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_topic_destroy(out);
    rd_kafka_destroy(producer);
    return consumed == n && reports.delivered == n ? 0 : 1;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *to) {
    fprintf(to,
        "usage: kafka-passthrough produce     -b BROKERS -t TOPIC -f FILE   (lines: key<TAB>value; - = stdin)\n"
        "       kafka-passthrough passthrough -b BROKERS -i INPUT -o OUTPUT -n N [-g GROUP] [-T IDLE_SECONDS]\n"
        "Producer settings: enable.idempotence=true acks=all linger.ms=2 compression.type=lz4.\n"
        "librdkafka %s\n", rd_kafka_version_str());
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *mode = argv[1], *brokers = "127.0.0.1:19092", *topic = NULL, *file = NULL;
    const char *input = NULL, *output = NULL;
    char group[128];
    snprintf(group, sizeof group, "bench-passthrough-%ld-%d", (long)time(NULL), (int)getpid());
    long n = 0;
    int idle_timeout = 60, opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "b:t:f:i:o:n:g:T:h")) != -1) {
        switch (opt) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'f': file = optarg; break;
        case 'i': input = optarg; break;
        case 'o': output = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'g': snprintf(group, sizeof group, "%s", optarg); break;
        case 'T': idle_timeout = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (strcmp(mode, "produce") == 0 && topic && file) return run_produce(brokers, topic, file);
    if (strcmp(mode, "passthrough") == 0 && input && output && n > 0)
        return run_passthrough(brokers, input, output, n, group, idle_timeout);
    usage(stderr);
    return 2;
}

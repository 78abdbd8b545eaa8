# Tributary: one image for every service. The container runs `tributary all` by default;
# docker-compose.yml runs one service per container with `command: [collector]` etc.
#
# librdkafka must be 2.8 or newer, and the official Swift images do not ship it: their
# Ubuntu 24.04 (noble) packages 2.3, Debian 12 (bookworm) 2.0.2. Rather than depend on a
# distribution that happens to package 2.8, the build stage compiles librdkafka from the
# same source and with the same patches as scripts/setup (Debian's 2.14.2 tarball, pinned
# by checksum; scripts/patches fixes a segmentation fault on a broker that lost its
# topics), and the runtime stage gets that shared library.
#
# SWIFT_VERSION must be at least the swift-tools-version of Package.swift.
ARG SWIFT_VERSION=6.2
ARG UBUNTU_VERSION=noble

# ---------------------------------------------------------------------------- build
FROM swift:${SWIFT_VERSION}-${UBUNTU_VERSION} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG LIBRDKAFKA_VERSION=2.14.2
ARG LIBRDKAFKA_SHA256=4d53568c13717b167d12c7b2a0fe12aeb5d6bfe02de53df5b68f86d870a81b33

# Distribution packages follow the base image's tag rather than pinned versions.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        ca-certificates curl build-essential pkg-config patch \
        libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

# librdkafka into /usr/local, where pkg-config (for the CRdKafka system library target)
# and the linker look by default. Without curl: OIDC token retrieval is not used.
WORKDIR /src/librdkafka
COPY scripts/patches/ /src/patches/
RUN curl -fsSL -o /tmp/librdkafka.tar.gz \
        "http://deb.debian.org/debian/pool/main/libr/librdkafka/librdkafka_${LIBRDKAFKA_VERSION}.orig.tar.gz" \
    && echo "${LIBRDKAFKA_SHA256}  /tmp/librdkafka.tar.gz" | sha256sum -c - \
    && tar -xzf /tmp/librdkafka.tar.gz --strip-components=1 \
    && for p in /src/patches/librdkafka-*.patch; do patch -p1 < "$p"; done \
    && ./configure --prefix=/usr/local --disable-curl \
    && make -j"$(nproc)" libs \
    && make install \
    && ldconfig \
    && pkg-config --atleast-version="${LIBRDKAFKA_VERSION}" rdkafka \
    && rm -rf /tmp/librdkafka.tar.gz /src/librdkafka

WORKDIR /build

# Dependencies first, so that a source change does not fetch them again.
COPY ./Package.* ./
RUN swift package resolve

COPY . .

# The Swift runtime is linked statically, so the runtime stage needs no Swift toolchain.
RUN swift build -c release --product tributary --static-swift-stdlib

# What the runtime stage needs: in /staging/app the binary, the resource bundles
# (dashboard assets) that Bundle.module looks for next to it and the crash backtracer;
# in /staging/lib librdkafka.
WORKDIR /staging
RUN bin="$(swift build -c release --show-bin-path)" \
    && mkdir app lib \
    && cp "$bin/tributary" app/ \
    && find -L "$bin/" -maxdepth 1 -regex '.*\.resources$' -exec cp -Ra {} app/ \; \
    && cp /usr/libexec/swift/linux/swift-backtrace-static app/ \
    && cp /usr/local/lib/librdkafka.so.1 lib/ \
    && strip --strip-unneeded lib/librdkafka.so.1

# ---------------------------------------------------------------------------- runtime
FROM ubuntu:${UBUNTU_VERSION}

# librdkafka's own dependencies, time zone data and CA roots for Foundation, curl for
# container health checks.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        libssl3t64 libsasl2-2 libzstd1 liblz4-1 zlib1g \
        ca-certificates tzdata curl \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /staging/lib/ /usr/local/lib/
# A numeric uid lets orchestrators verify that the container does not run as root.
RUN ldconfig \
    && useradd --uid 10001 --user-group --create-home --system --skel /dev/null \
        --home-dir /app tributary
WORKDIR /app
COPY --from=build --chown=10001:10001 /staging/app/ ./
USER 10001:10001

ENV PATH="/app:${PATH}" \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/app/swift-backtrace-static

# 8080 collector, 8081 query-api, 9090 Prometheus metrics.
EXPOSE 8080 8081 9090

ENTRYPOINT ["tributary"]
CMD ["all"]

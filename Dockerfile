# syntax=docker/dockerfile:1
#
# One image with the four service binaries; docker-compose.yml picks one per container with
# `command` (command-api, query-api, projector, workers; `command-api migrate` migrates).
# Migrations are embedded in the binaries at compile time: no files to ship besides them.

# ---- build -------------------------------------------------------------------------------
# The workspace needs Rust 1.88 or newer (edition 2024); rust:1 is the latest stable.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and compiled dependencies between builds (BuildKit, the
# default builder of Docker Engine 23+ and Compose v2); the binaries are copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
        -p command-api -p query-api -p projector -p workers \
    && mkdir -p /out \
    && cp target/release/command-api target/release/query-api \
          target/release/projector target/release/workers /out/

# ---- run ---------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to SMTP and other servers; curl for the compose healthchecks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/var/mail \
    && chown -R app:app /app
COPY --from=builder /out/ /usr/local/bin/
WORKDIR /app
USER app:app
ENV BIND_ADDRESS=0.0.0.0 \
    LOG_FORMAT=json
EXPOSE 8080 8081 8082 8083
# The binaries stop gracefully on SIGTERM (docker stop) and SIGINT.
CMD ["command-api"]

# Multi-stage build: compile in the Rust image, run on a small Debian base as a
# non-root user. TLS is rustls, so no OpenSSL is needed: database connections
# carry their own root certificates; an https OTLP endpoint (and `intake
# upload` run inside the container) check against the system's roots, which
# a slim base lacks: add the ca-certificates package for those.
#
# Stages: `runtime-base` (the runtime without the binary; first, so that even
# the classic builder builds it alone with `--target runtime-base`, as
# scripts/docker-smoke.sh does to add a binary built on the host), `build` (the
# compiler) and the last one, the image users run. The images are arguments so
# that a mirror or a locally made base can stand in for them.
#
# scripts/docker-smoke.sh reads the build stage's COPY lines (those without
# --from) and checks that the files they copy are enough for cargo: keep each
# source on a COPY line of the build stage.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime-base
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/intake intake \
    && mkdir -p /var/lib/intake/data \
    && chown -R intake:intake /var/lib/intake
USER intake
WORKDIR /var/lib/intake
ENV INTAKE_BIND=0.0.0.0:8080 \
    INTAKE_DATA_DIR=/var/lib/intake/data
VOLUME ["/var/lib/intake/data"]
EXPOSE 8080
# `intake healthcheck` GETs /healthz on INTAKE_BIND's port (no curl in the image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/intake", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/intake"]
CMD ["serve"]

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, in a layer of their own: the manifest, the lock file,
# build.rs and the benches the manifest declares (cargo wants their files),
# with stub sources for the package itself.
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches ./benches
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin intake \
    && rm -rf src
# Then the package: a change to the sources rebuilds only this layer.
COPY src ./src
COPY migrations ./migrations
# COPY keeps the files' times, older than the stub build: touch them so
# cargo rebuilds the package instead of keeping the stubs.
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked --bin intake

FROM runtime-base
COPY --from=build /src/target/release/intake /usr/local/bin/intake

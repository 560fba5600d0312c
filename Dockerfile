# Multi-stage build: compile in the Rust image, run on a small Debian base as a
# non-root user. TLS is rustls with bundled roots, so no OpenSSL is needed.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin intake

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/intake intake \
    && mkdir -p /var/lib/intake/data \
    && chown -R intake:intake /var/lib/intake
COPY --from=build /src/target/release/intake /usr/local/bin/intake
USER intake
WORKDIR /var/lib/intake
ENV INTAKE_BIND=0.0.0.0:8080 \
    INTAKE_DATA_DIR=/var/lib/intake/data
VOLUME ["/var/lib/intake/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/intake"]
CMD ["serve"]

# Multi-stage build: the same static build as `make build`, run as a
# non-root user with the data directory as a volume.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION} && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/responder /usr/local/bin/responder
# Owned by the nonroot user (65532) before it becomes a volume, so that a new
# volume inherits an owner the daemon can write as.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME /data
EXPOSE 9095
USER nonroot:nonroot
# The embedded default listens on loopback only. In a container, mount a
# config that listens on 0.0.0.0:9095 with auth.tokens (required off loopback).
ENTRYPOINT ["/usr/local/bin/responder"]
CMD ["serve", "--config", "/etc/responder/config.yml", "--data-dir", "/data"]

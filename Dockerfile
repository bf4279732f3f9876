# Multi-stage build: the same static build as `make build` (CGO_ENABLED=0),
# run as a non-root user with the data directory as a volume.
# configs/deploy_test.go checks these lines: the build command, the user,
# the entrypoint.
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
# Numeric, so that Kubernetes' runAsNonRoot can tell it is not root without
# a runAsUser (distroless's nonroot user is 65532).
USER 65532:65532
# The embedded default listens on loopback only. In a container, mount a
# config that listens on 0.0.0.0:9095 with auth.tokens (required off
# loopback); configs/kubernetes has one.
#
# It fails fast: `serve` loads and checks the config on the same path as
# `responder check-config` before it opens the database or listens, and a
# config with problems prints every one of them, each with its path, on
# stderr (the container's log) and exits 1. A missing config file is an
# error too, never a silent fall-back to the embedded default.
ENTRYPOINT ["/usr/local/bin/responder"]
CMD ["serve", "--config", "/etc/responder/config.yml", "--data-dir", "/data"]

# Multi-stage build: the same static build as `make build`, run as a
# non-root user with the data directory as a volume.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/responder /usr/local/bin/responder
# The embedded default listens on loopback only; in a container, listen on
# every interface, which requires tokens: mount a config with auth.tokens.
WORKDIR /data
VOLUME /data
EXPOSE 9095
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/responder"]
CMD ["serve", "--config", "/etc/responder/config.yml", "--data-dir", "/data"]

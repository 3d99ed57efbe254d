# syntax=docker/dockerfile:1

# One image, two binaries: /app/publisher and /app/worker. Which one runs is
# chosen by the command (docker-compose.yml `command:`, fly.toml [processes]),
# so the image deliberately has a CMD and no ENTRYPOINT: a command given at run
# time replaces CMD, whereas with an ENTRYPOINT it would only be appended to it
# as arguments.

FROM golang:1.26 AS build
WORKDIR /src

# Static binaries: the final image has no libc.
ENV CGO_ENABLED=0

# Download modules in their own layer so a source change does not refetch them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /app/publisher ./cmd/publisher && \
    go build -trimpath -ldflags="-s -w" -o /app/worker ./cmd/worker

# distroless/static: no shell, no package manager, runs as uid 65532 "nonroot".
# Without a shell there is no `docker exec … sh` and no shell-form healthcheck;
# that is the price of the smaller attack surface.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /app/publisher /app/worker /app/
USER nonroot

# `publisher serve` listens on PUBLISHER_ADDR, default :8080. Both binaries
# serve /metrics, /healthz and /readyz on METRICS_ADDR, default :9090; the
# `health` subcommand of each is the container health check (no curl here).
EXPOSE 8080 9090

# Go installs its own SIGTERM/SIGINT handlers, so the binary runs as PID 1
# without an init process and still shuts down gracefully.
CMD ["/app/worker"]

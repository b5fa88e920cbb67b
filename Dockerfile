# syntax=docker/dockerfile:1
#
# The one floe binary in a distroless image: no shell, no package manager,
# runs as the unprivileged "nonroot" user (uid 65532).
#
#   docker build -t floe --build-arg VERSION=$(git describe --always --dirty) .
#   docker run --rm floe agent --help
#
# The go build line uses the flags of `make build` (CGO_ENABLED=0, -trimpath,
# -ldflags "-s -w") plus -X main.version; deploy/deploy_test.go keeps the two
# in step. Health checks without a shell: `floe health --url URL`.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/floe ./cmd/floe

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/floe /floe
USER 65532:65532
# Kafka (agent), HTTP /healthz /readyz /metrics (agent 9644, compactor 9645).
EXPOSE 9092 9644 9645
ENTRYPOINT ["/floe"]

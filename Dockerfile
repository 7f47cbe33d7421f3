# The operator image, for those who build with a container engine:
#   docker build -t kura-db/kura:0.1.0 .
# `make image` builds the same image (one layer: /kura, /etc/passwd, /etc/group, /tmp; user
# 65532:65532; entrypoint /kura) without any engine or base image: see docs/install.md.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Keep equal to the chart's appVersion (charts/kura/Chart.yaml); a chart test checks it.
ARG VERSION=0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/kura ./cmd/kura \
 && mkdir -p /out/etc /out/tmp && chmod 1777 /out/tmp \
 && printf 'root:x:0:0:root:/:/sbin/nologin\nkura:x:65532:65532:kura:/tmp:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nkura:x:65532:\n' > /out/etc/group

# No base image: the binary is static and needs no shell, libc or CA bundle (the operator
# talks only to the Kubernetes API, with the service account's CA).
FROM scratch
ARG VERSION=0.1.0
COPY --from=build /out/ /
USER 65532:65532
ENTRYPOINT ["/kura"]
LABEL org.opencontainers.image.title=kura \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.source=https://github.com/kura-db/kura

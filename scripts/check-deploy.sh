#!/usr/bin/env bash
# Checks floe's deployment files without Docker, a cluster or the network
# beyond the Go module proxy; scripts/test.sh runs it as one step.
#
#   1. installs kustomize and kubeconform (pinned, below) with `go install`
#      into .cache/tools/bin when missing
#   2. make build: the binary with the flags the Dockerfile uses; go test
#      ./deploy checks that the two agree, and ./localstack parses
#      docker-compose.yml (Docker itself is not run)
#   3. renders every overlay in deploy/kubernetes/overlays/ with kustomize
#      into .cache/deploy/<overlay>.yaml
#   4. validates them with kubeconform -strict against JSON schemas that
#      deploy/check generates from k8s.io/api's Go types (kubeconform's
#      default schemas are downloaded from GitHub, which CI cannot reach),
#      and first proves the schemas reject deploy/check/testdata/invalid.yaml
#   5. deploy/check lint: floe's own rules (probes, FLOE_* variables that
#      are real flags of bin/floe, drain vs grace period, autoscaler,
#      disruption budget, security context, etcd flags), and its tests
#
# Exits non-zero if any step fails; the last line says which.
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.2  # v5.8.3 needs Go 1.27
KUBECONFORM_VERSION=v0.8.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.cache/tools/bin"
OUT="$ROOT/.cache/deploy"
CHECK="$TOOLS/floe-deploy-check"
mkdir -p "$TOOLS" "$OUT"

step() { printf 'check-deploy: %s\n' "$*"; }
die() {
	printf 'check-deploy: FAILED: %s\n' "$*" >&2
	exit 1
}

# install NAME MODULE/PATH VERSION: go install into $TOOLS unless that
# version is there (a stamp file records it).
install() {
	local name="$1" pkg="$2" version="$3"
	local stamp="$TOOLS/$name.version"
	if [[ -x $TOOLS/$name && -f $stamp && $(cat "$stamp") == "$version" ]]; then
		return 0
	fi
	step "installing $name $version (go install $pkg@$version)"
	GOBIN="$TOOLS" go install "$pkg@$version" ||
		die "go install $pkg@$version"
	echo "$version" >"$stamp"
}

install kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

step "make build (the Dockerfile's flags) and go test ./deploy ./localstack"
make --no-print-directory build || die "make build"
go test -count=1 ./deploy ./localstack || die "go test ./deploy ./localstack (Dockerfile, .dockerignore, docker-compose.yml)"

step "building deploy/check"
(cd deploy/check && go vet ./... && go build -o "$CHECK" .) || die "building deploy/check"

shopt -s nullglob
overlays=(deploy/kubernetes/overlays/*/)
shopt -u nullglob
((${#overlays[@]})) || die "no overlays in deploy/kubernetes/overlays"
rendered=()
for dir in "${overlays[@]}"; do
	name="$(basename "$dir")"
	step "kustomize build $dir"
	"$TOOLS/kustomize" build "$dir" >"$OUT/$name.yaml" || die "kustomize build $dir"
	rendered+=("$OUT/$name.yaml")
done

step "kubeconform -strict (schemas from k8s.io/api in .cache/deploy/schemas)"
invalid=deploy/check/testdata/invalid.yaml
rm -rf "$OUT/schemas"
"$CHECK" schemas -out "$OUT/schemas" "${rendered[@]}" "$invalid" || die "generating schemas"
location="$OUT/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
set +e
neg="$("$TOOLS/kubeconform" -strict -summary -schema-location "$location" "$invalid" 2>&1)"
set -e
if ! grep -q 'Invalid: 3, Errors: 0' <<<"$neg"; then
	printf '%s\n' "$neg"
	die "kubeconform did not reject the 3 broken manifests in $invalid: the schemas check nothing"
fi
"$TOOLS/kubeconform" -strict -summary -schema-location "$location" "${rendered[@]}" ||
	die "kubeconform: the manifests do not match the Kubernetes API"

step "deploy/check lint (floe's rules) and its tests"
"$CHECK" lint -floe "$ROOT/bin/floe" "${rendered[@]}" || die "deploy/check lint"
(cd deploy/check && go test -count=1 ./...) || die "go test in deploy/check"

echo "check-deploy: ok: ${#rendered[@]} overlays rendered, validated and linted"

#!/usr/bin/env bash
# Shows Kura working: installs what is missing, builds, starts the built-in local cluster (or
# uses the cluster in $KUBECONFIG when KURA_DEMO_USE_KUBECONFIG=1), installs the operator with
# the Helm chart, applies the sample MySQLCluster, waits until it is Available and prints how
# to reach it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ns="${KURA_DEMO_NAMESPACE:-demo}"
step() { printf '\n==> %s\n' "$*"; }

step "installing what is missing (Debian packages, pinned tools)"
hack/install-deps.sh
hack/tools.sh helm
make -s build

if [[ "${KURA_DEMO_USE_KUBECONFIG:-0}" == 1 ]]; then
  step "using the cluster in \$KUBECONFIG"
  kubectl="kubectl"
  image_args=()
  if [[ -n "${KURA_IMAGE:-}" ]]; then
    image_args=(--set "image.repository=${KURA_IMAGE%:*}" --set "image.tag=${KURA_IMAGE##*:}")
  fi
else
  step "starting the local cluster (first run builds Kubernetes from source: several minutes)"
  hack/local-up.sh
  export KUBECONFIG="$root/test/.local/kubeconfig"
  kubectl="$(hack/build-k8s.sh kubectl | tail -1)/kubectl"
  # The local cluster runs the operator image as the freshly built bin/kura.
  image_args=(--set image.repository=kura-db/kura --set image.tag=dev)
fi

step "installing the operator with the Helm chart"
"$kubectl" apply --server-side -f charts/kura/crds >/dev/null
bin/helm upgrade --install kura charts/kura --namespace kura-system --create-namespace \
  "${image_args[@]}" --wait --timeout 5m
"$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

step "applying docs/samples/mysqlcluster.yaml in namespace $ns"
start=$(date +%s)
"$kubectl" apply -n "$ns" -f docs/samples/mysqlcluster.yaml
"$kubectl" wait -n "$ns" --for=condition=Available mysqlcluster/shop --timeout=10m
echo "Available after $(( $(date +%s) - start ))s"
"$kubectl" wait -n "$ns" --for=jsonpath='{.status.state}'=Healthy mysqlcluster/shop --timeout=10m
echo "Healthy (every instance replicating) after $(( $(date +%s) - start ))s"
"$kubectl" get -n "$ns" mysqlclusters,pods -o wide

app_password=$("$kubectl" get secret -n "$ns" shop-credentials -o jsonpath='{.data.app-password}' | base64 -d)
admin_password=$("$kubectl" get secret -n "$ns" shop-credentials -o jsonpath='{.data.admin-password}' | base64 -d)
primary_ip=$("$kubectl" get svc -n "$ns" shop-primary -o jsonpath='{.spec.clusterIP}')
cat <<INFO

Kura is running. Try:

  export KUBECONFIG=$KUBECONFIG
  $kubectl get mysqlclusters -n $ns
  $kubectl describe mysqlcluster -n $ns shop
  # the application account: all privileges on the database "shop"
  mariadb -h $primary_ip -u app -p'$app_password' shop -e 'SELECT @@hostname, @@read_only'
  # the administrator (no READ ONLY ADMIN: a fenced primary refuses its writes too)
  mariadb -h $primary_ip -u admin -p'$admin_password' -e 'SHOW DATABASES'

Planned switchover to instance 1:
  $kubectl patch mysqlcluster -n $ns shop --type merge -p '{"spec":{"switchover":{"target":1,"id":"demo-1"}}}'

Tear everything down: make demo-down
INFO

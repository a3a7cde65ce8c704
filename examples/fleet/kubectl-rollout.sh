#!/usr/bin/env bash
# Rolls a pyhot bundle out to the pods of a deployment with kubectl: the
# static pyhot binary and the bundle are copied into each pod, every pod is
# checked first (--dry-run: nothing changes unless every pod can take the
# patch), then the pods are patched one at a time, stopping at the first
# failure. pyhot runs inside the container, as the service's user.
#
#   examples/fleet/kubectl-rollout.sh -n shop -l app=web fix.pyhot
#
# PID: the service's master inside the container (1 when it is the
# container's entry point: `gunicorn ...` as CMD). CONTAINER: -c NAME.
#
# What the pods need: `tar` in the container (kubectl cp uses it), and
# permission to ptrace the service from a `kubectl exec` shell (same user
# plus CAP_SYS_PTRACE, or kernel.yama.ptrace_scope 0), unless the service
# was started with the agent in it (`pyhot run -- gunicorn ...`, or
# PYTHONPATH as README.md says), which needs no ptrace at all.
set -euo pipefail

namespace=default selector="" container=() pid=${PID:-1} pyhot=${PYHOT:-pyhot}
while getopts "n:l:c:" option; do
  case $option in
    n) namespace=$OPTARG ;;
    l) selector=$OPTARG ;;
    c) container=(-c "$OPTARG") ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
bundle=${1:?usage: kubectl-rollout.sh -n NAMESPACE -l SELECTOR [-c CONTAINER] BUNDLE}
[ -n "$selector" ] || { echo "kubectl-rollout.sh: -l SELECTOR is required" >&2; exit 2; }
# The bundle's id is the patch's label in every process it reaches.
id=$(grep -o '"id": *"b-[0-9a-f]*"' "$bundle" | grep -o 'b-[0-9a-f]*' | head -n 1)

pods=$(kubectl get pods -n "$namespace" -l "$selector" -o jsonpath='{.items[*].metadata.name}')
[ -n "$pods" ] || { echo "no pods match $selector in $namespace" >&2; exit 1; }

for pod in $pods; do
  kubectl cp -n "$namespace" "${container[@]}" "$(command -v "$pyhot")" "$pod:/tmp/pyhot"
  kubectl cp -n "$namespace" "${container[@]}" "$bundle" "$pod:/tmp/patch.pyhot"
  echo "== $pod: dry run"
  kubectl exec -n "$namespace" "${container[@]}" "$pod" -- /tmp/pyhot apply "$pid" /tmp/patch.pyhot --tree --dry-run
done

patched=()
for pod in $pods; do
  echo "== $pod: apply"
  if ! kubectl exec -n "$namespace" "${container[@]}" "$pod" -- /tmp/pyhot apply "$pid" /tmp/patch.pyhot --tree; then
    # The pods before it run the patch, and some processes of this one may.
    echo "stopped at $pod; to undo the patch where it may have landed:" >&2
    for undo in "${patched[@]}" "$pod"; do
      echo "  kubectl exec -n $namespace ${container[*]:+${container[*]} }$undo -- /tmp/pyhot revert $pid $id --tree" >&2
    done
    exit 1
  fi
  patched+=("$pod")
done

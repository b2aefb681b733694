#!/bin/sh
# One-shot Temporal bootstrap, run by the `temporal-setup` service
# (temporalio/admin-tools image, which ships the `temporal` CLI):
#   1. wait for the frontend to report healthy,
#   2. create the namespace if it does not exist,
#   3. register the custom search attributes used by the course workflows.
# Idempotent: safe to run on every `docker compose up`.
#
# Search attribute values are stored UNENCRYPTED in the visibility store and
# shown in the UI: never put patient data in them (IDs of staff and enum-like
# states only).
set -eu

NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-30d}"
TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
MAX_ATTEMPTS="${SETUP_MAX_ATTEMPTS:-12}"
RETRY_SLEEP="${SETUP_RETRY_SLEEP:-5}"

TEMPORAL_HOST="${TEMPORAL_ADDRESS%:*}"
TEMPORAL_PORT="${TEMPORAL_ADDRESS##*:}"

echo "Waiting for Temporal frontend port ${TEMPORAL_ADDRESS}..."
attempt=0
until nc -z -w 5 "$TEMPORAL_HOST" "$TEMPORAL_PORT"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
    echo "Temporal frontend port not reachable" >&2
    exit 1
  fi
  sleep "$RETRY_SLEEP"
done

# Upstream's create-namespace.sh resolves the host to an IPv4 address before
# calling the CLI (works around a name-resolution issue); do the same.
ADDRESS="$TEMPORAL_ADDRESS"
if command -v getent >/dev/null 2>&1; then
  ip="$(getent ahosts "$TEMPORAL_HOST" | awk '/STREAM/ && $1 ~ /^[0-9.]+$/ {print $1; exit}')"
  if [ -n "$ip" ]; then
    ADDRESS="${ip}:${TEMPORAL_PORT}"
  fi
fi
echo "Using Temporal address ${ADDRESS}"

attempt=0
until temporal operator cluster health --address "$ADDRESS"; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge "$MAX_ATTEMPTS" ]; then
    echo "Temporal server did not become healthy" >&2
    exit 1
  fi
  sleep "$RETRY_SLEEP"
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "Namespace '${NAMESPACE}' already exists"
else
  echo "Creating namespace '${NAMESPACE}' (retention ${RETENTION})"
  temporal operator namespace create --address "$ADDRESS" \
    --namespace "$NAMESPACE" --retention "$RETENTION"
fi

# create_search_attribute NAME TYPE
# Retries while a freshly created namespace propagates; tolerates
# "already exists" but fails if the attribute exists with a different type.
create_search_attribute() {
  sa_name="$1"
  sa_type="$2"
  sa_attempt=0
  while :; do
    if out="$(temporal operator search-attribute create --address "$ADDRESS" \
        --namespace "$NAMESPACE" --name "$sa_name" --type "$sa_type" 2>&1)"; then
      echo "Search attribute ${sa_name} (${sa_type}): ok"
      return 0
    fi
    case "$out" in
      *"different type"*)
        echo "Search attribute ${sa_name} exists with another type: ${out}" >&2
        return 1
        ;;
      *"already exists"* | *"AlreadyExists"*)
        echo "Search attribute ${sa_name} (${sa_type}): already exists"
        return 0
        ;;
    esac
    sa_attempt=$((sa_attempt + 1))
    if [ "$sa_attempt" -ge "$MAX_ATTEMPTS" ]; then
      echo "Failed to create search attribute ${sa_name}: ${out}" >&2
      return 1
    fi
    echo "Retrying search attribute ${sa_name} in ${RETRY_SLEEP}s: ${out}"
    sleep "$RETRY_SLEEP"
  done
}

# One line per attribute: name, type (tests/test_compose.py parses these).
create_search_attribute CoursePhase Keyword
create_search_attribute AwaitingSteps KeywordList
create_search_attribute ClinicianId Keyword
create_search_attribute TherapistId Keyword
create_search_attribute NextDueAt Datetime
create_search_attribute Overdue Bool
create_search_attribute OnHold Bool
create_search_attribute NeedsClinicalReview Bool
create_search_attribute DosingSessionsCompleted Int
create_search_attribute InsuranceStatus Keyword
create_search_attribute NeedsAttention Keyword
create_search_attribute DischargeDueAt Datetime

echo "Temporal setup complete for namespace '${NAMESPACE}'"

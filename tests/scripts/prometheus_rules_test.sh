#!/usr/bin/env bash
# contrib/prometheus/alerts.yml and contrib/grafana/pgfanout.json, without any server:
#   - promtool check rules and promtool test rules (contrib/prometheus/alerts_test.yml);
#   - the dashboard parses (jq), has the datasource and instance variables, and every PromQL
#     expression in it is valid (written into a recording-rules file for promtool check rules,
#     with Grafana's variables replaced);
#   - every pgfanout_* metric the dashboard and the rules name is one the daemon registers (read
#     from the sources under daemon/: the names passed to Metrics::counter/gauge/histogram and to
#     CounterFamily; a histogram only with _bucket, _sum or _count), and every label they use is
#     job, instance, le or a string of the daemon's sources;
#   - and each of those checks fails on a copy with a misspelled metric, a bare histogram name,
#     an invalid expression or an unknown label.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dashboard=$root/contrib/grafana/pgfanout.json
alerts=$root/contrib/prometheus/alerts.yml
alerts_test=$root/contrib/prometheus/alerts_test.yml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {  # check NAME RC OUTPUT
  if [ "$2" = 0 ]; then
    passed=$((passed + 1)); echo "ok: $1"
  else
    failed=$((failed + 1)); echo "FAILED: $1"; sed 's/^/    /' <<<"$3"
  fi
}
expect_fail() {  # expect_fail NAME RC OUTPUT PATTERN: the check failed and said PATTERN
  if [ "$2" != 0 ] && grep -qE -- "$4" <<<"$3"; then
    passed=$((passed + 1)); echo "ok: $1"
  else
    failed=$((failed + 1)); echo "FAILED: $1 (rc $2, wanted a failure matching: $4)"; sed 's/^/    /' <<<"$3"
  fi
}
for tool in promtool jq; do
  command -v $tool >/dev/null || { echo "FAILED: $tool is missing (scripts/install-deps.sh test)"; echo "0 passed, 1 failed"; exit 1; }
done

# ---- The metrics the daemon registers, from its sources: "histogram NAME" or "scalar NAME".
# A name counts when it is the first argument of counter(, gauge( or histogram( (on the same line
# or the next), the name given to a CounterFamily (`member_(m, "..."` or `member{metrics, "..."`),
# or a `...Metric = "..."` constant; other pgfanout_ strings (a config default such as
# pgfanout_publish) do not.
awk '
  { cur = $0; text = prevtail cur
    while (match(text, /((counter|gauge|histogram)\(|[a-z_]+[({](m|metrics), |Metric = )[ \t]*"pgfanout_[a-z0-9_]+"/)) {
      m = substr(text, RSTART, RLENGTH); text = substr(text, RSTART + RLENGTH)
      match(m, /"pgfanout_[a-z0-9_]+"/)
      print (m ~ /^histogram/ ? "histogram " : "scalar ") substr(m, RSTART + 1, RLENGTH - 2)
    }
    prevtail = (cur ~ /(counter|gauge|histogram)\($/) ? cur : "" }' \
  $(find "$root/daemon" -name '*.cpp' -o -name '*.hpp' | sort) | sort -u >"$work/exported"
count=$(wc -l <"$work/exported")
# Every metric of operations.md's table is found: the reading of the sources still works.
missing=$(grep -oE '^\| `pgfanout_[a-z0-9_]+`' "$root/docs/operations.md" | grep -oE 'pgfanout_[a-z0-9_]+' | sort -u |
  while read -r n; do grep -qE " $n\$" "$work/exported" || echo "$n"; done)
check "the daemon's metrics are read from its sources ($count, operations.md's table among them)" \
  "$([ "$count" -ge 50 ] && [ -z "$missing" ]; echo $?)" "found $count; not found: $missing"

# check_names KIND FILE...: every pgfanout_ name in the files is exported. KIND strict: a bare
# histogram name fails (it selects nothing); text: allowed (a description naming the histogram).
check_names() {
  local kind=$1; shift
  local bad="" n base
  for n in $(cat "$@" | grep -oE 'pgfanout_[a-z0-9_]+' | sort -u); do
    grep -qx "scalar $n" "$work/exported" && continue
    if [[ $n =~ ^(.*)_(bucket|sum|count)$ ]] && grep -qx "histogram ${BASH_REMATCH[1]}" "$work/exported"; then
      continue
    fi
    if [ "$kind" = text ] && grep -qx "histogram $n" "$work/exported"; then continue; fi
    if grep -qx "histogram $n" "$work/exported"; then
      bad+="$n: a histogram, select ${n}_bucket, _sum or _count"$'\n'
    else
      bad+="$n: not a metric the daemon exports"$'\n'
    fi
  done
  [ -z "$bad" ] || { printf '%s' "$bad"; return 1; }
}

# check_labels FILE...: label names in matchers, by/without/on/ignoring/group_* lists, legends
# ({{name}}) and annotation templates ($labels.name) are job, instance, le or a daemon string.
check_labels() {
  local bad="" l
  for l in $( (grep -hoE '[{,][[:space:]]*[a-zA-Z_][a-zA-Z0-9_]*[[:space:]]*(=~|!~|!=|=)[[:space:]]*\\?"' "$@" |
                grep -oE '[a-zA-Z_][a-zA-Z0-9_]*[[:space:]]*(=~|!~|!=|=)' | grep -oE '^[a-zA-Z_][a-zA-Z0-9_]*'
              grep -hoE '\b(by|without|on|ignoring|group_left|group_right)[[:space:]]*\([^)]*\)' "$@" |
                sed -E 's/^[a-z_]+[[:space:]]*\(//; s/\)$//' | tr ',' '\n'
              grep -hoE '\{\{[[:space:]]*[a-z_]+[[:space:]]*\}\}|\$labels\.[a-z_]+' "$@" | grep -oE '[a-z_]+[[:space:]]*\}*$' | grep -oE '^[a-z_]+'
             ) | tr -d ' ' | grep -v '^$' | sort -u); do
    case $l in job | instance | le) continue ;; esac
    grep -rqF "\"$l\"" "$root/daemon" || bad+="label $l: not a label the daemon's sources name"$'\n'
  done
  [ -z "$bad" ] || { printf '%s' "$bad"; return 1; }
}

# check_dashboard_exprs FILE: every target's expr and every variable's label_values() selector,
# with Grafana's variables replaced, is a valid PromQL expression (promtool check rules).
check_dashboard_exprs() {
  jq '[ (.. | objects | select(has("expr")) | .expr),
        (.templating.list[] | select(.type == "query") | (.query.query // .query)
           | capture("^label_values\\((?<s>.*),[[:space:]]*[a-zA-Z_]+\\)$").s) ]
      | map(gsub("\\$__rate_interval|\\$__interval|\\$\\{__rate_interval\\}"; "1m")
            | gsub("\\$__range"; "1h")
            | gsub("\\$(job|instance)\\b"; ".*")
            | gsub("\\$redis_queue_limit"; "100000") | gsub("\\$webhook_queue_limit"; "10000"))
      | to_entries
      | {groups: [{name: "dashboard", rules: map({record: "dashboard:expr_\(.key)", expr: .value})}]}' \
    "$1" >"$work/exprs.yml" || return 1
  if grep -q '\$' "$work/exprs.yml"; then
    echo "an expression uses a variable this test does not know:"; grep '\$' "$work/exprs.yml"; return 1
  fi
  local n; n=$(jq '.groups[0].rules | length' "$work/exprs.yml")
  [ "$n" -gt 0 ] || { echo "no expressions found"; return 1; }
  promtool check rules "$work/exprs.yml" 2>&1 || return 1
}

# check_dashboard_shape FILE: importable into Grafana 10/11 and selectable by instance.
check_dashboard_shape() {
  jq -e '
    (.schemaVersion >= 36)
    and (.title | length > 0) and (.uid | length > 0)
    and ([.templating.list[] | select(.type == "datasource" and .query == "prometheus")] | length == 1)
    and ([.templating.list[] | select(.name == "instance" and .type == "query")] | length == 1)
    and ([.panels[] | .id] | length == (unique | length))
    and ([.panels[] | select(.type != "row")] | length > 0)
    and all(.panels[] | select(.type != "row");
            .datasource.uid == "${datasource}" and (.gridPos.w > 0) and (.gridPos.h > 0)
            and (.targets | length > 0)
            and all(.targets[]; .datasource.uid == "${datasource}" and (.expr | length > 0)))
    and all(.panels[] | select(.type != "row") | .targets[].expr;
            test("instance=~\"\\$instance\""))' "$1" >/dev/null
}

# ---- The files as they are.
out=$(cd "$root/contrib/prometheus" && promtool check rules alerts.yml 2>&1); rc=$?
check "promtool check rules alerts.yml" $rc "$out"
out=$(cd "$root/contrib/prometheus" && promtool test rules alerts_test.yml 2>&1); rc=$?
check "promtool test rules alerts_test.yml" $rc "$out"
tested=$(grep -oE '^[[:space:]]+alertname: [A-Za-z]+' "$alerts_test" | awk '{print $2}' | sort -u)
untested=$(grep -oE '^[[:space:]]+- alert: [A-Za-z]+' "$alerts" | awk '{print $3}' | sort -u | comm -23 - <(echo "$tested"))
check "every alert has a unit test" "$([ -z "$untested" ]; echo $?)" "untested: $untested"
out=$(jq empty "$dashboard" 2>&1); rc=$?
check "the dashboard is JSON" $rc "$out"
out=$(check_dashboard_shape "$dashboard" 2>&1); rc=$?
check "the dashboard has its variables, unique panel ids, and \$instance in every query" $rc "$out"
out=$(check_dashboard_exprs "$dashboard" 2>&1); rc=$?
check "every PromQL expression of the dashboard is valid" $rc "$out"
jq -r '(.. | objects | select(has("expr")) | .expr), (.templating.list[] | select(.type == "query") | .definition)' \
  "$dashboard" >"$work/dashboard-exprs"
out=$(check_names strict "$work/dashboard-exprs" "$alerts" "$alerts_test" && check_names text "$dashboard" 2>&1); rc=$?
check "every pgfanout_ metric of the dashboard and the rules is exported by the daemon" $rc "$out"
out=$(check_labels "$work/dashboard-exprs" "$dashboard" "$alerts" "$alerts_test" 2>&1); rc=$?
check "every label of the dashboard and the rules is one the daemon names" $rc "$out"

# ---- Each check fails when it should.
sed 's/pgfanout_notifications_total/pgfanout_notification_total/' "$dashboard" >"$work/typo.json"
jq -r '.. | objects | select(has("expr")) | .expr' "$work/typo.json" >"$work/typo-exprs"
out=$(check_names strict "$work/typo-exprs" 2>&1); rc=$?
expect_fail "a misspelled metric in the dashboard is named" $rc "$out" '^pgfanout_notification_total: not a metric the daemon exports$'

sed 's/pgfanout_webhook_dead_total/pgfanout_webhooks_dead_total/' "$alerts" >"$work/alerts.yml"
out=$(check_names strict "$work/alerts.yml" 2>&1); rc=$?
expect_fail "a misspelled metric in the rules is named" $rc "$out" '^pgfanout_webhooks_dead_total: not a metric'

printf 'expr: rate(pgfanout_action_latency_seconds[5m])\n' >"$work/bare"
out=$(check_names strict "$work/bare" 2>&1); rc=$?
expect_fail "a bare histogram name is refused" $rc "$out" '^pgfanout_action_latency_seconds: a histogram'

jq '(.panels[] | select(.type != "row") | .targets[0].expr) |= sub("\\)\\)$"; ")")' "$dashboard" >"$work/broken.json"
out=$(check_dashboard_exprs "$work/broken.json" 2>&1); rc=$?
expect_fail "an invalid PromQL expression in the dashboard fails promtool" $rc "$out" 'parse error|unclosed|unexpected'

sed 's/sum by (channel) (rate(pgfanout_notifications_total/sum by (chanel) (rate(pgfanout_notifications_total/' \
  "$dashboard" >"$work/label.json"
out=$(check_labels "$work/label.json" 2>&1); rc=$?
expect_fail "an unknown label in the dashboard is named" $rc "$out" '^label chanel: not a label'

jq '.panels[1].targets[0].expr |= sub("instance=~\"\\$instance\""; "instance=~\".*\"")' "$dashboard" >"$work/noinst.json"
out=$(check_dashboard_shape "$work/noinst.json" 2>&1); rc=$?
expect_fail "a query without \$instance is refused" $rc "$out" '.*'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Moves random people of the location example (public.person) by small random steps, so that a
# map page fed by pgfanout has something to show.
#
#   examples/location/move.sh [-i MS] [-n STEPS] [-m METERS] [-p PEOPLE] [CONNINFO]
#
#   CONNINFO   libpq conninfo or URI; default $PGFANOUT_DSN, else libpq's own defaults (PG* vars)
#   -i MS      pause between steps in milliseconds (default 500)
#   -n STEPS   number of steps, 0 = until Ctrl-C (default 120)
#   -m METERS  largest distance one person moves in one step (default 50)
#   -p PEOPLE  how many random people move in each step (default 1)
#
# Every step is its own transaction, so each one's notifications go out at once. Ctrl-C stops
# after the current step. The numbers reach SQL only as psql-quoted literals (:'var').
set -euo pipefail

usage() { sed -n '5,12s/^# \{0,1\}//p' "$0" >&2; exit "${1:-64}"; }

interval_ms=500 steps=120 meters=50 people=1
while getopts 'i:n:m:p:h' opt; do
  case $opt in
    i) interval_ms=$OPTARG ;;
    n) steps=$OPTARG ;;
    m) meters=$OPTARG ;;
    p) people=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
dsn=${1:-${PGFANOUT_DSN:-}}

is_count() { [[ $1 =~ ^[0-9]{1,9}$ ]]; }
is_count "$interval_ms" || { echo "move.sh: -i wants milliseconds, got '$interval_ms'" >&2; exit 64; }
is_count "$steps"       || { echo "move.sh: -n wants a step count, got '$steps'" >&2; exit 64; }
is_count "$people"      || { echo "move.sh: -p wants a number of people, got '$people'" >&2; exit 64; }
[[ $meters =~ ^[0-9]{1,7}(\.[0-9]+)?$ ]] || { echo "move.sh: -m wants meters, got '$meters'" >&2; exit 64; }

interrupted=0
trap 'interrupted=1' INT

set +e
psql "$dsn" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=terse \
  -v steps="$steps" -v interval_ms="$interval_ms" -v meters="$meters" -v people="$people" <<'SQL'
SET pgfanout_move.steps = :'steps';
SET pgfanout_move.interval_ms = :'interval_ms';
SET pgfanout_move.meters = :'meters';
SET pgfanout_move.people = :'people';
DO $move$
DECLARE
  steps       int    := current_setting('pgfanout_move.steps')::int;
  pause       float8 := current_setting('pgfanout_move.interval_ms')::float8 / 1000;
  max_meters  float8 := current_setting('pgfanout_move.meters')::float8;
  per_step    int    := current_setting('pgfanout_move.people')::int;
  step        int    := 0;
  moved       text;
BEGIN
  LOOP
    step := step + 1;
    EXIT WHEN steps > 0 AND step > steps;
    WITH picked AS (
      SELECT p.id FROM public.person p WHERE p.loc IS NOT NULL ORDER BY random() LIMIT per_step
    ), updated AS (
      UPDATE public.person p
         SET loc = ST_Project(p.loc, random() * max_meters, radians(random() * 360))
        FROM picked
       WHERE p.id = picked.id
      RETURNING p.name
    )
    SELECT string_agg(coalesce(u.name, '?'), ', ') INTO moved FROM updated u;
    COMMIT;  -- the notifications of this step go out now
    RAISE NOTICE 'step %: moved %', step, coalesce(moved, 'nobody (no people with a location)');
    PERFORM pg_sleep(pause);
  END LOOP;
END
$move$;
SQL
rc=$?
set -e

if [ "$interrupted" = 1 ]; then
  echo "move.sh: stopped" >&2
  exit 0
fi
exit "$rc"

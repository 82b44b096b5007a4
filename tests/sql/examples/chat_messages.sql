-- pgTAP tests of examples/chat/schema.sql: send, fetch_new, unread, mark_read, unread_count,
-- contacts. Runs in one transaction and rolls back.
BEGIN;
SELECT plan(45);

CREATE FUNCTION pg_temp.uid(name text) RETURNS int
  LANGUAGE sql AS $$ SELECT id FROM chat.users WHERE lower(username) = lower(name) $$;

-- Sends a message and returns its id.
CREATE FUNCTION pg_temp.say(sender text, receiver text, body text) RETURNS bigint
  LANGUAGE sql AS $$ SELECT message_id FROM chat.send(pg_temp.uid(sender), receiver, body) $$;

CREATE FUNCTION pg_temp.hint_of(statement text) RETURNS text
  LANGUAGE plpgsql AS $$
DECLARE
  hint text;
BEGIN
  EXECUTE statement;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
  RETURN hint;
END
$$;

DO $$
BEGIN
  PERFORM chat.register(name, 'secret-' || name, name || '@example.org')
     FROM unnest(ARRAY['ann', 'bob', 'carol', 'dave']) AS name;
END
$$;

-- send ----------------------------------------------------------------------------------------

CREATE TEMP TABLE sent AS SELECT * FROM chat.send(pg_temp.uid('bob'), 'ann', 'hello ann');
SELECT is((SELECT count(*) FROM sent), 1::bigint, 'send returns one row');
SELECT results_eq(
  $$ SELECT m.id, m.sent_at, m.from_user, m.from_username, m.to_user, m.body, m.read_at
       FROM chat.messages m JOIN sent s ON s.message_id = m.id $$,
  $$ SELECT s.message_id, s.sent_at, pg_temp.uid('bob'), 'bob'::text, pg_temp.uid('ann'), 'hello ann'::text,
            NULL::timestamptz FROM sent s $$,
  'send stores sender, sender''s name, receiver and body; returns the id and time; unread');
SELECT lives_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'ANN', 'hello again') $$,
  'the receiver is found regardless of case');

SELECT is(chat.set_friends_only(pg_temp.uid('ann'), true), true, 'ann accepts messages only from friends');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'ann', 'may I?') $$,
  'P0001', 'refused: ann accepts messages only from friends',
  'send is refused when the receiver is friends-only and the sender not her friend');
SELECT is(
  pg_temp.hint_of($$ SELECT chat.send(pg_temp.uid('bob'), 'ann', 'may I?') $$),
  'The receiver has to add you to their friends list first.',
  'a refused send comes with a hint');
SELECT results_eq(
  $$ SELECT friend FROM chat.set_friends(pg_temp.uid('ann'), ARRAY['bob']) $$,
  ARRAY['bob'],
  'ann befriends bob');
SELECT lives_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'ann', 'thanks, friend') $$,
  'send is allowed once the receiver lists the sender as a friend');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('carol'), 'ann', 'me too?') $$,
  'P0001', 'refused: ann accepts messages only from friends',
  'other senders are still refused');
SELECT results_eq(
  $$ SELECT friend FROM chat.set_friends(pg_temp.uid('carol'), ARRAY['ann']) $$,
  ARRAY['ann'],
  'carol lists ann as her friend');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('carol'), 'ann', 'but I like you') $$,
  'P0001', 'refused: ann accepts messages only from friends',
  'friendship is one-directional: listing the receiver does not help');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'nobody', 'hello?') $$,
  'P0002', 'unknown user: nobody', 'send refuses an unknown receiver');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), NULL, 'hello?') $$,
  'P0002', 'unknown user: NULL', 'send refuses a NULL receiver');
SELECT throws_ok(
  $$ SELECT chat.send(-1, 'bob', 'hello?') $$,
  'P0002', 'unknown user id -1', 'send refuses an unknown sender');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'carol', '') $$,
  '22023', 'message is empty', 'send refuses an empty body');
SELECT throws_ok(
  format('SELECT chat.send(%s, %L, %L)', pg_temp.uid('bob'), 'carol', E' \t\n '),
  '22023', 'message is empty', 'send refuses a body of only white space');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'carol', NULL) $$,
  '22023', 'message is empty', 'send refuses a NULL body');
SELECT throws_ok(
  format('SELECT chat.send(%s, %L, %L)', pg_temp.uid('bob'), 'carol', repeat('x', 1001)),
  '22023', 'message is too long (1001 characters)', 'send refuses a body over 1000 characters');
SELECT lives_ok(
  format('SELECT chat.send(%s, %L, %L)', pg_temp.uid('bob'), 'carol', repeat('é', 1000)),
  'send accepts a body of 1000 characters');
SELECT throws_ok(
  $$ SELECT chat.send(pg_temp.uid('bob'), 'Bob', 'note to self') $$,
  '22023', 'you cannot send a message to yourself', 'send refuses a message to yourself');
SELECT is(
  (SELECT count(*) FROM chat.messages), 4::bigint,
  'refused sends store nothing');

-- fetch_new -----------------------------------------------------------------------------------

DO $$
BEGIN
  PERFORM pg_temp.say('bob', 'dave', 'one');
  PERFORM pg_temp.say('carol', 'dave', 'two');
  PERFORM pg_temp.say('bob', 'dave', 'three');
END
$$;
SELECT is(chat.unread_count(pg_temp.uid('dave')), 3::bigint, 'unread_count counts unread messages');
SELECT results_eq(
  $$ SELECT from_username, body FROM chat.fetch_new(pg_temp.uid('dave')) $$,
  $$ VALUES ('bob'::text, 'one'::text), ('carol', 'two'), ('bob', 'three') $$,
  'fetch_new returns the unread messages in send order');
SELECT is_empty(
  $$ SELECT 1 FROM chat.messages WHERE to_user = pg_temp.uid('dave') AND read_at IS NULL $$,
  'fetch_new marks them read');
SELECT isnt(
  (SELECT last_read_at FROM chat.users WHERE username = 'dave'), NULL,
  'fetch_new records last_read_at');
SELECT is(chat.unread_count(pg_temp.uid('dave')), 0::bigint, 'nothing is unread after fetch_new');
SELECT is_empty(
  $$ SELECT * FROM chat.fetch_new(pg_temp.uid('dave')) $$,
  'a second fetch_new returns nothing');
SELECT is(pg_temp.say('carol', 'dave', 'four') IS NOT NULL, true, 'carol writes again');
SELECT results_eq(
  $$ SELECT from_username, body FROM chat.fetch_new(pg_temp.uid('dave')) $$,
  $$ VALUES ('carol'::text, 'four'::text) $$,
  'the next fetch_new returns only what arrived since');
SELECT is(chat.unread_count(pg_temp.uid('ann')), 3::bigint, 'fetch_new leaves other users'' messages unread');
SELECT is_empty($$ SELECT * FROM chat.fetch_new(-1) $$, 'fetch_new of an unknown user returns nothing');

-- unread and mark_read ------------------------------------------------------------------------

SELECT pg_temp.say('ann', 'dave', 'five') AS m5 \gset
SELECT pg_temp.say('bob', 'dave', 'six') AS m6 \gset
SELECT pg_temp.say('carol', 'dave', 'seven') AS m7 \gset
SELECT results_eq(
  $$ SELECT id, from_username, body FROM chat.unread(pg_temp.uid('dave')) $$,
  format($$ VALUES (%s::bigint, 'ann'::text, 'five'::text), (%s, 'bob', 'six'), (%s, 'carol', 'seven') $$,
         :m5, :m6, :m7),
  'unread returns the unread messages in send order');
SELECT is(chat.unread_count(pg_temp.uid('dave')), 3::bigint, 'unread marks nothing');
SELECT is(chat.mark_read(pg_temp.uid('dave'), :m6), 2::bigint, 'mark_read marks up to the given id and counts them');
SELECT results_eq(
  $$ SELECT body FROM chat.unread(pg_temp.uid('dave')) $$,
  ARRAY['seven'],
  'messages after up_to stay unread');
SELECT is(chat.mark_read(pg_temp.uid('dave'), :m6), 0::bigint, 'marking again changes nothing');
SELECT is(chat.mark_read(pg_temp.uid('bob'), :m7), 0::bigint, 'mark_read does not touch other users'' messages');
SELECT is(chat.unread_count(pg_temp.uid('dave')), 1::bigint, '... which stay unread');
SELECT throws_ok(
  format('SELECT chat.mark_read(%s, NULL)', pg_temp.uid('dave')),
  '22023', 'up_to must be a message id', 'mark_read refuses a NULL up_to');
SELECT is(chat.unread_count(-1), 0::bigint, 'unread_count of an unknown user is 0');

-- contacts ------------------------------------------------------------------------------------
-- ann: friends-only, lists bob.  bob: open, lists carol.  carol: open, lists ann.
-- dave: friends-only, lists nobody.  erin: friends-only, lists carol.

DO $$
BEGIN
  PERFORM chat.register('erin', 'secret-erin', 'erin@example.org');
  PERFORM chat.set_friends_only(pg_temp.uid('dave'), true);
  PERFORM chat.set_friends_only(pg_temp.uid('erin'), true);
  PERFORM chat.set_friends(pg_temp.uid('bob'), ARRAY['carol']);
  PERFORM chat.set_friends(pg_temp.uid('erin'), ARRAY['carol']);
END
$$;

SELECT results_eq(
  $$ SELECT username, is_friend, friends_only FROM chat.contacts(pg_temp.uid('carol')) $$,
  $$ VALUES ('bob'::text, false, false), ('erin'::text, false, true) $$,
  'contacts: open users and friends-only users who list me, not myself');
SELECT results_eq(
  $$ SELECT username, is_friend, friends_only FROM chat.contacts(pg_temp.uid('bob')) $$,
  $$ VALUES ('ann'::text, false, true), ('carol'::text, true, false) $$,
  'contacts flags the users I list as friends');
SELECT results_eq(
  $$ SELECT username, is_friend FROM chat.contacts(pg_temp.uid('ann')) $$,
  $$ VALUES ('bob'::text, true), ('carol'::text, false) $$,
  'contacts leaves out friends-only users who do not list me, even my own friends');
SELECT is_empty(
  $$ SELECT c.username
       FROM chat.users u
       CROSS JOIN LATERAL chat.contacts(u.id) c
       JOIN chat.users r ON r.username = c.username
      WHERE r.friends_only
        AND NOT EXISTS (SELECT 1 FROM chat.friends f WHERE f.user_id = r.id AND f.friend_id = u.id) $$,
  'nobody''s contacts include a user who would refuse their messages');
SELECT is_empty($$ SELECT * FROM chat.contacts(-1) $$, 'contacts of an unknown user are empty');

SELECT * FROM finish();
ROLLBACK;

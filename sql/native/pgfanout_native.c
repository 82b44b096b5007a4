/*
 * pgfanout_native: watch trigger functions in C, loaded by the PostgreSQL server.
 *
 * pgfanout.watch() uses them when this library is installed on the server (see
 * docs/triggers.md#native-triggers): the trigger passes its settings as arguments, and the
 * functions send what the generated PL/pgSQL functions send, byte for byte (tests/sql runs its
 * comparison tests both ways). They exist because a PL/pgSQL row trigger costs the writer more
 * than the payload itself (docs/benchmarks.md).
 *
 * Trigger arguments, all text:
 *   0 channel   1 schema   2 table   3 durable ("t"/"f")   4 max bytes of a notification
 *   5 number of carried columns, then their names
 *   then the number of "changed" columns, then their names
 *   then the number of key columns, then their names
 * Columns are found by name in the firing relation (a partition may number them differently).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

PG_MODULE_MAGIC;

/* How a column's value becomes the text to_jsonb(value)::text gives. */
typedef enum
{
	ENC_INT2,					/* integers: a JSON number */
	ENC_INT4,
	ENC_INT8,
	ENC_NUMERIC,				/* a number, or a string for NaN and the infinities */
	ENC_BOOL,
	ENC_TEXT,					/* text, varchar, bpchar: a JSON string of the value */
	ENC_NAME,
	ENC_STRING,					/* uuid: a JSON string of the output */
	ENC_DATETIME,				/* date and timestamps, in jsonb's ISO format */
	ENC_JSONB,
	ENC_TO_JSONB				/* anything else: through to_jsonb() itself */
} Encoding;

typedef struct
{
	AttrNumber	attnum;
	char	   *name;
	char	   *key;			/* the JSON key, quoted, e.g. "id" */
	char	   *prefix;			/* the key and its colon as an object member starts: "id": */
	int			prefix_len;
	Oid			basetype;
	int16		typlen;			/* the column's, for datumIsEqual */
	bool		typbyval;
	Encoding	enc;
	FmgrInfo	out;			/* output function (ENC_NUMERIC, ENC_STRING) */
	FmgrInfo	tojsonb;		/* to_jsonb, typed for this column */
	bool		native_eq;		/* "changed" uses the type's own equality */
	bool		has_eq;			/* the type has a default equality (pairs keys) */
	FmgrInfo	eq;
	Oid			collation;
	/*
	 * ENC_DATETIME: the last value encoded and its text. A bulk statement often carries one
	 * timestamp in many rows (now() of the statement that wrote them); timestamptz's text
	 * depends on the session's time zone as well, which is kept with it.
	 */
	bool		has_last_dt;
	Datum		last_dt;
	pg_tz	   *last_tz;
	int			last_dt_len;
	char		last_dt_text[MAXDATELEN + 3];
} Column;

typedef struct
{
	Oid			relid;			/* the relation the settings were resolved for */
	char	   *channel;
	bool		durable;
	int			max_bytes;
	char	   *head_rest;		/* ","schema":..,"table":.. after the op */
	int			nkeep;
	Column	   *keep;			/* in jsonb key order */
	int			nchanged;
	Column	   *changed;
	int			nkeys;
	Column	   *keys;			/* key columns that are carried, in jsonb key order */
	int			nkeycols;
	Column	   *keycols;		/* all key columns, for pairing (per statement) */
	struct Span *spans;			/* per carried column: where the new image put its value */
} Watch;

/* Where a value's text is in a buffer. */
typedef struct Span
{
	int			off;
	int			len;
} Span;

PG_FUNCTION_INFO_V1(pgfanout_native_row);
PG_FUNCTION_INFO_V1(pgfanout_native_statement);
PG_FUNCTION_INFO_V1(pgfanout_native_version);

/* The interface version pgfanout's SQL expects (pgfanout.native_version()). */
Datum
pgfanout_native_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(1);
}

static void
init_column(Column *c, Relation rel, const char *name, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = InvalidAttrNumber;
	Form_pg_attribute att = NULL;
	int32		typmod;
	Oid			outfunc;
	bool		varlena;
	TypeCacheEntry *tc;
	StringInfoData key;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
		{
			attnum = a->attnum;
			att = a;
			break;
		}
	}
	if (att == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("pgfanout: watched column \"%s\" of \"%s\" does not exist", name,
						RelationGetRelationName(rel)),
				 errhint("Run SELECT pgfanout.rewatch(true).")));

	c->attnum = attnum;
	c->name = pstrdup(name);
	c->typlen = att->attlen;
	c->typbyval = att->attbyval;
	typmod = att->atttypmod;
	c->basetype = getBaseTypeAndTypmod(att->atttypid, &typmod);
	c->collation = att->attcollation;
	initStringInfo(&key);
	escape_json(&key, name);
	c->key = key.data;
	appendStringInfoString(&key, ": ");
	c->prefix = pstrdup(key.data);
	c->prefix_len = key.len;
	key.data[key.len - 2] = '\0';

	switch (c->basetype)
	{
		case INT2OID:
			c->enc = ENC_INT2;
			break;
		case INT4OID:
			c->enc = ENC_INT4;
			break;
		case INT8OID:
			c->enc = ENC_INT8;
			break;
		case NUMERICOID:
			c->enc = ENC_NUMERIC;
			break;
		case BOOLOID:
			c->enc = ENC_BOOL;
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:			/* bpchar's output keeps its padding, as the stored value */
			c->enc = ENC_TEXT;
			break;
		case NAMEOID:
			c->enc = ENC_NAME;
			break;
		case UUIDOID:
			c->enc = ENC_STRING;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			c->enc = ENC_DATETIME;
			break;
		case JSONBOID:
			c->enc = ENC_JSONB;
			break;
		default:
			c->enc = ENC_TO_JSONB;
			break;
	}
	getTypeOutputInfo(c->basetype, &outfunc, &varlena);
	fmgr_info_cxt(outfunc, &c->out, cxt);

	/* to_jsonb(anyelement) reads its argument's type from the call expression. */
	fmgr_info_cxt(F_TO_JSONB, &c->tojsonb, cxt);
	c->tojsonb.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
											   list_make1(makeNullConst(att->atttypid, att->atttypmod,
																		att->attcollation)),
											   InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);

	/*
	 * "Changed" compares with the type's own equality where it means "the same JSON" (the list
	 * of pgfanout.differs_sql); any other type compares the jsonb images: no equality operator
	 * (json, point, xml), or an equality that ignores what the JSON shows (interval, bpchar,
	 * float, arrays, non-deterministic collations).
	 */
	switch (c->basetype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case BOOLOID:
		case UUIDOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case JSONBOID:
			c->native_eq = true;
			break;
		case TEXTOID:
		case VARCHAROID:
		case NAMEOID:
			c->native_eq = !OidIsValid(c->collation) || get_collation_isdeterministic(c->collation);
			break;
		default:
			c->native_eq = false;
			break;
	}
	tc = lookup_type_cache(c->basetype, TYPECACHE_EQ_OPR_FINFO);
	c->has_eq = OidIsValid(tc->eq_opr_finfo.fn_oid);
	if (c->has_eq)
		fmgr_info_copy(&c->eq, &tc->eq_opr_finfo, cxt);
	else
		c->native_eq = false;
}

/* jsonb orders an object's keys by length, then bytewise; the payload keeps that order. */
static int
column_order(const void *a, const void *b)
{
	const char *x = ((const Column *) a)->name;
	const char *y = ((const Column *) b)->name;
	size_t		lx = strlen(x);
	size_t		ly = strlen(y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

pg_attribute_noreturn()
static void
malformed(TriggerData *td, const char *what)
{
	elog(ERROR, "pgfanout: trigger %s has malformed arguments (%s)", td->tg_trigger->tgname, what);
	pg_unreachable();
}

/* A whole number written with digits only (no sign, no blanks), at most max. */
static int
parse_number(TriggerData *td, const char *text, int max, const char *what)
{
	int64		n = 0;

	if (*text == '\0')
		malformed(td, what);
	for (const char *c = text; *c != '\0'; c++)
	{
		if (*c < '0' || *c > '9')
			malformed(td, what);
		n = n * 10 + (*c - '0');
		if (n > max)
			malformed(td, what);
	}
	return (int) n;
}

/* A column list's length: what is left of the arguments bounds it. */
static int
parse_count(TriggerData *td, int *pos)
{
	int			n;

	if (*pos >= td->tg_trigger->tgnargs)
		malformed(td, "too few arguments");
	n = parse_number(td, td->tg_trigger->tgargs[*pos], td->tg_trigger->tgnargs - *pos - 1,
					 "a column count");
	(*pos)++;
	return n;
}

/* A column list; a name given twice is refused (each column is one member of an image). */
static Column *
parse_columns(TriggerData *td, int *pos, int *count, MemoryContext cxt)
{
	int			n = parse_count(td, pos);
	Column	   *cols = MemoryContextAllocZero(cxt, sizeof(Column) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		const char *name = td->tg_trigger->tgargs[(*pos)++];

		init_column(&cols[i], td->tg_relation, name, cxt);
		for (int j = 0; j < i; j++)
			if (cols[j].attnum == cols[i].attnum)
				elog(ERROR, "pgfanout: trigger %s names column \"%s\" twice in one list",
					 td->tg_trigger->tgname, name);
	}
	*count = n;
	return cols;
}

/* The trigger's settings, resolved once per statement (kept in fn_extra). */
static Watch *
get_watch(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Watch	   *w = (Watch *) fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	MemoryContext old;
	StringInfoData head;
	int			pos = 5;

	if (w != NULL && w->relid == RelationGetRelid(td->tg_relation))
		return w;
	if (td->tg_trigger->tgnargs < 8)
		malformed(td, "too few arguments");

	old = MemoryContextSwitchTo(cxt);
	w = palloc0(sizeof(Watch));
	w->relid = RelationGetRelid(td->tg_relation);
	w->channel = pstrdup(td->tg_trigger->tgargs[0]);
	if (strcmp(td->tg_trigger->tgargs[3], "t") != 0 && strcmp(td->tg_trigger->tgargs[3], "f") != 0)
		malformed(td, "durable is neither t nor f");
	w->durable = strcmp(td->tg_trigger->tgargs[3], "t") == 0;
	/*
	 * At most what NOTIFY takes (async.c's NOTIFY_PAYLOAD_MAX_LENGTH, less one); below 1024 bytes
	 * an envelope's head and tail could leave no room for a row.
	 */
	w->max_bytes = parse_number(td, td->tg_trigger->tgargs[4], BLCKSZ - NAMEDATALEN - 128 - 1,
								"the NOTIFY limit");
	if (w->max_bytes < 1024)
		malformed(td, "the NOTIFY limit is under 1024");
	initStringInfo(&head);
	appendStringInfoString(&head, "\",\"schema\":");
	escape_json(&head, td->tg_trigger->tgargs[1]);
	appendStringInfoString(&head, ",\"table\":");
	escape_json(&head, td->tg_trigger->tgargs[2]);
	w->head_rest = head.data;

	w->keep = parse_columns(td, &pos, &w->nkeep, cxt);
	qsort(w->keep, w->nkeep, sizeof(Column), column_order);
	w->spans = palloc0(sizeof(Span) * Max(w->nkeep, 1));
	w->changed = parse_columns(td, &pos, &w->nchanged, cxt);
	w->keycols = parse_columns(td, &pos, &w->nkeycols, cxt);
	if (pos != td->tg_trigger->tgnargs)
		malformed(td, "arguments after the key columns");
	/* The key columns as they appear in the carried image (what jsonb_pick keeps). */
	w->keys = palloc0(sizeof(Column) * Max(w->nkeep, 1));
	for (int i = 0; i < w->nkeep; i++)
		for (int k = 0; k < w->nkeycols; k++)
			if (w->keep[i].attnum == w->keycols[k].attnum)
			{
				w->keys[w->nkeys++] = w->keep[i];
				break;
			}
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = w;
	return w;
}

/* Room for n more bytes: a call only when the buffer must grow. */
static inline void
reserve(StringInfo buf, int n)
{
	if (buf->len + n >= buf->maxlen)
		enlargeStringInfo(buf, n);
}

/* appendBinaryStringInfo() for the many short pieces of an element. */
static inline void
put(StringInfo buf, const char *s, int n)
{
	reserve(buf, n);
	memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

/*
 * escape_json() of len bytes (a text value has no NUL byte): runs of characters that need no
 * escape are copied at once.
 */
static void
append_json_string(StringInfo buf, const char *p, int len)
{
	const char *end = p + len;

	enlargeStringInfo(buf, len + 2);
	appendStringInfoCharMacro(buf, '"');
	while (p < end)
	{
		const char *run = p;

		while (p < end && (unsigned char) *p >= ' ' && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			put(buf, run, p - run);
		if (p == end)
			break;
		switch (*p)
		{
			case '\b':
				appendStringInfoString(buf, "\\b");
				break;
			case '\f':
				appendStringInfoString(buf, "\\f");
				break;
			case '\n':
				appendStringInfoString(buf, "\\n");
				break;
			case '\r':
				appendStringInfoString(buf, "\\r");
				break;
			case '\t':
				appendStringInfoString(buf, "\\t");
				break;
			case '"':
				appendStringInfoString(buf, "\\\"");
				break;
			case '\\':
				appendStringInfoString(buf, "\\\\");
				break;
			default:
				appendStringInfo(buf, "\\u%04x", (int) *p);
				break;
		}
		p++;
	}
	appendStringInfoCharMacro(buf, '"');
}

/* Appends the text to_jsonb(value)::text gives ("null" for NULL). */
static void
append_value(StringInfo buf, Column *c, Datum value, bool isnull)
{
	char	   *s;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (c->enc)
	{
		case ENC_INT2:
		case ENC_INT4:
			reserve(buf, 12);
			buf->len += pg_ltoa(c->enc == ENC_INT2 ? (int32) DatumGetInt16(value) : DatumGetInt32(value),
								buf->data + buf->len);
			break;
		case ENC_INT8:
			reserve(buf, MAXINT8LEN + 1);
			buf->len += pg_lltoa(DatumGetInt64(value), buf->data + buf->len);
			break;
		case ENC_NUMERIC:
			/* numeric_out gives a JSON number, or NaN, Infinity, -Infinity: strings in jsonb */
			s = OutputFunctionCall(&c->out, value);
			if (s[0] == 'N' || s[0] == 'I' || (s[0] == '-' && s[1] == 'I'))
				escape_json(buf, s);
			else
				appendStringInfoString(buf, s);
			break;
		case ENC_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			break;
		case ENC_TEXT:
			{
				text	   *t = DatumGetTextPP(value);

				append_json_string(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		case ENC_NAME:
			escape_json(buf, NameStr(*DatumGetName(value)));
			break;
		case ENC_STRING:
			escape_json(buf, OutputFunctionCall(&c->out, value));
			break;
		case ENC_DATETIME:
			if (!c->has_last_dt || c->last_dt != value ||
				(c->basetype == TIMESTAMPTZOID && c->last_tz != session_timezone))
			{
				char		dt[MAXDATELEN + 1];

				/* ISO 8601 or "infinity": nothing in it needs an escape */
				JsonEncodeDateTime(dt, value, c->basetype, NULL);
				c->last_dt_len = snprintf(c->last_dt_text, sizeof(c->last_dt_text), "\"%s\"", dt);
				/* date and the timestamps are passed by value on 64-bit builds */
				c->has_last_dt = c->typbyval;
				c->last_dt = value;
				c->last_tz = session_timezone;
			}
			put(buf, c->last_dt_text, c->last_dt_len);
			break;
		case ENC_JSONB:
			{
				Jsonb	   *j = DatumGetJsonbP(value);

				JsonbToCString(buf, &j->root, VARSIZE(j));
				break;
			}
		case ENC_TO_JSONB:
			{
				Jsonb	   *j = DatumGetJsonbP(FunctionCall1(&c->tojsonb, value));

				JsonbToCString(buf, &j->root, VARSIZE(j));
				break;
			}
	}
}

/* A value of a row: from a heap tuple (row trigger) or a slot (transition table). */
typedef struct
{
	HeapTuple	tuple;
	TupleDesc	desc;
	TupleTableSlot *slot;
} Image;

static Datum
image_get(Image *img, AttrNumber attnum, bool *isnull)
{
	if (img->slot != NULL)
		return slot_getattr(img->slot, attnum, isnull);
	return heap_getattr(img->tuple, attnum, img->desc, isnull);
}

/*
 * '{"a": 1, "b": "x"}': the jsonb text of an object of the given columns. With spans, it notes
 * where each value's text went. With ref as well (an image written before into the same buffer,
 * whose values spans locate), a value binary-equal to ref's is copied from there instead of
 * being encoded again: the old image of an UPDATE mostly repeats the new one.
 */
static void
append_object(StringInfo buf, Column *cols, int n, Image *img, Span *spans, Image *ref)
{
	put(buf, "{", 1);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		v = image_get(img, cols[i].attnum, &isnull);
		int			start;

		if (i > 0)
			put(buf, ", ", 2);
		put(buf, cols[i].prefix, cols[i].prefix_len);
		if (ref != NULL && !isnull)
		{
			bool		rnull;
			Datum		r = image_get(ref, cols[i].attnum, &rnull);

			if (!rnull && datumIsEqual(v, r, cols[i].typbyval, cols[i].typlen))
			{
				reserve(buf, spans[i].len);
				memcpy(buf->data + buf->len, buf->data + spans[i].off, spans[i].len);
				buf->len += spans[i].len;
				buf->data[buf->len] = '\0';
				continue;
			}
		}
		start = buf->len;
		append_value(buf, &cols[i], v, isnull);
		if (spans != NULL && ref == NULL)
		{
			spans[i].off = start;
			spans[i].len = buf->len - start;
		}
	}
	put(buf, "}", 1);
}

/*
 * x = y by the type's equality (has_eq). For the types with native_eq the same bytes are the
 * same value, and for a by-value one (integers, bool, date, timestamps) different bytes are a
 * different value as well: most comparisons then need no call.
 */
static bool
values_equal(Column *c, Datum x, Datum y)
{
	if (c->native_eq)
	{
		if (datumIsEqual(x, y, c->typbyval, c->typlen))
			return true;
		if (c->typbyval)
			return false;
	}
	return DatumGetBool(FunctionCall2Coll(&c->eq, c->collation, x, y));
}

static bool
column_differs(Column *c, Image *a, Image *b)
{
	bool		anull,
				bnull;
	Datum		x = image_get(a, c->attnum, &anull);
	Datum		y = image_get(b, c->attnum, &bnull);

	if (anull || bnull)
		return anull != bnull;
	if (c->native_eq)
		return !values_equal(c, x, y);
	return !DatumGetBool(DirectFunctionCall2(jsonb_eq, FunctionCall1(&c->tojsonb, x),
											 FunctionCall1(&c->tojsonb, y)));
}

static bool
row_changed(Watch *w, Image *new_img, Image *old_img)
{
	for (int i = 0; i < w->nchanged; i++)
		if (column_differs(&w->changed[i], new_img, old_img))
			return true;
	return false;
}

static void
append_head(StringInfo buf, Watch *w, const char *op)
{
	appendStringInfoString(buf, "{\"v\":1,\"op\":\"");
	appendStringInfoString(buf, op);
	appendStringInfoString(buf, w->head_rest);
}

/*
 * ',"txid":"..","at":".."}' of this transaction and statement: the same for every row of a
 * statement, so the last one made is kept.
 */
static void
append_tail(StringInfo buf)
{
	static TimestampTz last_at = DT_NOBEGIN;
	static FullTransactionId last_txid;
	static char last_tail[96];
	TimestampTz at = GetCurrentStatementStartTimestamp();
	FullTransactionId txid = GetTopFullTransactionId();

	if (at != last_at || !FullTransactionIdEquals(txid, last_txid))
	{
		struct pg_tm tm;
		fsec_t		fsec;

		if (timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0)
			ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
		snprintf(last_tail, sizeof(last_tail),
				 ",\"txid\":\"" UINT64_FORMAT "\",\"at\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"}",
				 U64FromFullTransactionId(txid), tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
		last_at = at;
		last_txid = txid;
	}
	appendStringInfoString(buf, last_tail);
}

static SPIPlanPtr outbox_plan = NULL;

/* Inserts one event into pgfanout.outbox in the writer's transaction; returns its id. */
static int64
outbox_insert(const char *channel, const char *payload)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int64		id;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "pgfanout: SPI_connect failed");
	if (outbox_plan == NULL)
	{
		Oid			types[2] = {TEXTOID, JSONBOID};
		SPIPlanPtr	plan = SPI_prepare("INSERT INTO pgfanout.outbox (channel, payload) VALUES ($1, $2) RETURNING id",
									   2, types);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "pgfanout: could not prepare the outbox insert: %s", SPI_result_code_string(SPI_result));
		outbox_plan = plan;
	}
	values[0] = CStringGetTextDatum(channel);
	values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload));
	if (SPI_execute_plan(outbox_plan, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "pgfanout: the outbox insert failed");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

static void
ring_doorbell(const char *channel, int64 id)
{
	char		bell[64];

	snprintf(bell, sizeof(bell), "{\"v\":1,\"outbox\":true,\"id\":" INT64_FORMAT "}", id);
	Async_Notify(channel, bell);
}

static const char *
op_name(TriggerEvent ev)
{
	if (TRIGGER_FIRED_BY_INSERT(ev))
		return "INSERT";
	if (TRIGGER_FIRED_BY_UPDATE(ev))
		return "UPDATE";
	if (TRIGGER_FIRED_BY_DELETE(ev))
		return "DELETE";
	elog(ERROR, "pgfanout: a watch trigger fired for TRUNCATE");
	return NULL;
}

static void
check_trigger(FunctionCallInfo fcinfo, bool row)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		(TRIGGER_FIRED_FOR_ROW(td->tg_event) != 0) != row)
		elog(ERROR, "pgfanout: %s must be called as an AFTER %s trigger",
			 row ? "native_row" : "native_statement", row ? "ROW" : "STATEMENT");
}

/*
 * The row-level watch: one notification per row (or, durable, an outbox row and a doorbell),
 * as pgfanout.generate_row_function's functions send it.
 */
Datum
pgfanout_native_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Watch	   *w;
	TriggerEvent ev;
	const char *op;
	Image		new_img = {0},
				old_img = {0};
	bool		has_new,
				has_old;
	StringInfoData buf;
	int			head_len,
				body_end;

	check_trigger(fcinfo, true);
	w = get_watch(fcinfo);
	ev = td->tg_event;
	op = op_name(ev);
	has_new = !TRIGGER_FIRED_BY_DELETE(ev);
	has_old = !TRIGGER_FIRED_BY_INSERT(ev);
	new_img.desc = old_img.desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(ev))
	{
		old_img.tuple = td->tg_trigtuple;
		new_img.tuple = td->tg_newtuple;
		if (!row_changed(w, &new_img, &old_img))
			return PointerGetDatum(NULL);
	}
	else if (has_new)
		new_img.tuple = td->tg_trigtuple;
	else
		old_img.tuple = td->tg_trigtuple;

	initStringInfo(&buf);
	append_head(&buf, w, op);
	head_len = buf.len;
	if (has_new)
	{
		appendStringInfoString(&buf, ",\"new\":");
		append_object(&buf, w->keep, w->nkeep, &new_img, w->spans, NULL);
	}
	if (has_old)
	{
		appendStringInfoString(&buf, ",\"old\":");
		append_object(&buf, w->keep, w->nkeep, &old_img, w->spans, has_new ? &new_img : NULL);
	}
	body_end = buf.len;
	append_tail(&buf);

	if (w->durable)
	{
		ring_doorbell(w->channel, outbox_insert(w->channel, buf.data));
		return PointerGetDatum(NULL);
	}
	if (buf.len > w->max_bytes)
	{
		/* Too long for NOTIFY: the key columns only, marked truncated; else no row data. */
		StringInfoData tail;

		initStringInfo(&tail);
		appendBinaryStringInfo(&tail, buf.data + body_end, buf.len - body_end);
		buf.len = head_len;
		buf.data[buf.len] = '\0';
		if (w->nkeycols > 0)
		{
			if (has_new)
			{
				appendStringInfoString(&buf, ",\"new\":");
				append_object(&buf, w->keys, w->nkeys, &new_img, NULL, NULL);
			}
			if (has_old)
			{
				appendStringInfoString(&buf, ",\"old\":");
				append_object(&buf, w->keys, w->nkeys, &old_img, NULL, NULL);
			}
			appendStringInfoString(&buf, ",\"truncated\":true");
			appendStringInfoString(&buf, tail.data);
		}
		if (w->nkeycols == 0 || buf.len > w->max_bytes)
		{
			buf.len = head_len;
			buf.data[buf.len] = '\0';
			appendStringInfoString(&buf, ",\"truncated\":true");
			appendStringInfoString(&buf, tail.data);
		}
	}
	Async_Notify(w->channel, buf.data);
	return PointerGetDatum(NULL);
}

/* The elements of one statement, packed greedily in row order into parts. */
typedef struct
{
	Watch	   *w;
	MemoryContext cxt;			/* where the parts live */
	int			budget;
	int			part_room;		/* what a part's buffer is allocated with */
	List	   *parts;			/* StringInfo each: elements joined with ',' */
	StringInfo	open;			/* NULL: no open part */
	List	   *deferred;		/* old-only elements of UPDATE, packed last */
	StringInfoData elem;
} Packer;

static StringInfo
new_part(Packer *p)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);

	p->open = palloc(sizeof(StringInfoData));
	p->open->maxlen = p->part_room;
	p->open->data = palloc(p->open->maxlen);
	resetStringInfo(p->open);
	p->parts = lappend(p->parts, p->open);
	MemoryContextSwitchTo(old);
	return p->open;
}

/* Packs the element in p->elem: into the open part if it fits, else into a new one. */
static void
pack(Packer *p)
{
	if (p->open != NULL && p->open->len > 0 && p->open->len + 1 + p->elem.len > p->budget)
		p->open = NULL;
	if (p->open == NULL)
		new_part(p);
	else if (p->open->len > 0)
		appendStringInfoChar(p->open, ',');
	appendBinaryStringInfo(p->open, p->elem.data, p->elem.len);
}

/* Appends the element {"new":..,"old":..} of one changed row (either image may be missing). */
static void
write_element(StringInfo buf, Column *cols, int n, Image *new_img, Image *old_img, Span *spans)
{
	put(buf, "{", 1);
	if (new_img != NULL)
	{
		put(buf, "\"new\":", 6);
		append_object(buf, cols, n, new_img, spans, NULL);
	}
	if (old_img != NULL)
	{
		if (new_img != NULL)
			put(buf, ",", 1);
		put(buf, "\"old\":", 6);
		append_object(buf, cols, n, old_img, spans, spans != NULL ? new_img : NULL);
	}
	put(buf, "}", 1);
}

/*
 * The element too long for a notification, cut to its key and marked truncated
 * (pgfanout.cut_element), into p->elem; '{"truncated":true}' without a key or if even that is
 * too long.
 */
static void
build_cut_element(Packer *p, Image *new_img, Image *old_img)
{
	Watch	   *w = p->w;

	resetStringInfo(&p->elem);
	if (w->nkeycols > 0)
	{
		write_element(&p->elem, w->keys, w->nkeys, new_img, old_img, NULL);
		p->elem.len--;			/* the closing brace */
		appendStringInfoString(&p->elem, ",\"truncated\":true}");
	}
	if (w->nkeycols == 0 || p->elem.len > p->budget)
	{
		resetStringInfo(&p->elem);
		appendStringInfoString(&p->elem, "{\"truncated\":true}");
	}
}

/*
 * Adds one changed row's element. It is written straight into the open part; only when it
 * closes the part (it does not fit) is it moved to a new one, and only when it does not fit a
 * notification alone is it cut to its key.
 */
static void
add_element(Packer *p, Image *new_img, Image *old_img)
{
	StringInfo	part = p->open != NULL ? p->open : new_part(p);
	int			start = part->len;
	int			len;

	if (start > 0)
		put(part, ",", 1);
	write_element(part, p->w->keep, p->w->nkeep, new_img, old_img, p->w->spans);
	len = part->len - start - (start > 0 ? 1 : 0);
	if (!p->w->durable && len > p->budget)
	{
		part->len = start;
		part->data[start] = '\0';
		build_cut_element(p, new_img, old_img);
		pack(p);
	}
	else if (start > 0 && part->len > p->budget)
	{
		StringInfo	next = new_part(p);

		appendBinaryStringInfo(next, part->data + start + 1, len);
		part->len = start;
		part->data[start] = '\0';
	}
}

/* An old-only element of a row whose key changed: packed after all others, like the join's. */
static void
defer_element(Packer *p, Image *old_img)
{
	MemoryContext old;

	resetStringInfo(&p->elem);
	write_element(&p->elem, p->w->keep, p->w->nkeep, NULL, old_img, NULL);
	if (!p->w->durable && p->elem.len > p->budget)
		build_cut_element(p, NULL, old_img);
	old = MemoryContextSwitchTo(p->cxt);
	p->deferred = lappend(p->deferred, pnstrdup(p->elem.data, p->elem.len));
	MemoryContextSwitchTo(old);
}

static bool
same_key(Watch *w, Image *a, Image *b)
{
	for (int i = 0; i < w->nkeycols; i++)
	{
		Column	   *c = &w->keycols[i];
		bool		anull,
					bnull;
		Datum		x = image_get(a, c->attnum, &anull);
		Datum		y = image_get(b, c->attnum, &bnull);

		if (anull || bnull || !c->has_eq || !values_equal(c, x, y))
			return false;
	}
	return true;
}

/* A transition table, read from the start with a read pointer of its own. */
static TupleTableSlot *
open_transition(Tuplestorestate *ts, TupleDesc desc, MemoryContext cxt)
{
	int			ptr;
	MemoryContext old;
	TupleTableSlot *slot;

	if (ts == NULL)
		elog(ERROR, "pgfanout: the watch trigger has no transition table");
	ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	old = MemoryContextSwitchTo(cxt);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MemoryContextSwitchTo(old);
	return slot;
}

/*
 * The next row into slot. A tuple read back from disk is allocated in the current context and
 * freed by the slot at the next read, so it is read in cxt (the statement's), not a row's.
 */
static bool
next_row(Tuplestorestate *ts, TupleTableSlot *slot, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bool		found = tuplestore_gettupleslot(ts, true, false, slot);

	if (found)
		slot_getallattrs(slot);
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * The statement-level watch: the changed rows as elements of "rows" arrays, in parts under the
 * NOTIFY limit (durable: about 1 MB, into the outbox), as pgfanout.generate_statement_function's
 * functions send them. UPDATE pairs the n-th old row with the n-th new row (where PostgreSQL
 * records the two images of a row); a pair whose key differs gives a new-only element in place
 * and an old-only element after all others, in row order, as the generated function's join on
 * the key does (which leaves their order open; and keys swapped between rows: the join pairs by
 * key, this pairs by row).
 */
Datum
pgfanout_native_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	Watch	   *w;
	const char *op;
	Packer		p = {0};
	StringInfoData head,
				tail,
				msg;
	int			nparts,
				k;
	int64		last_id = 0;
	ListCell   *lc;
	MemoryContext rowcxt;

	check_trigger(fcinfo, false);
	desc = RelationGetDescr(td->tg_relation);
	w = get_watch(fcinfo);
	op = op_name(td->tg_event);
	initStringInfo(&head);
	append_head(&head, w, op);
	initStringInfo(&tail);
	append_tail(&tail);
	p.w = w;
	p.cxt = CurrentMemoryContext;
	p.budget = (w->durable ? 1048576 : w->max_bytes) -
		(head.len + (int) strlen(",\"part\":,\"parts\":,\"rows\":[]") + tail.len + 20);
	/*
	 * A notification's part starts with room for its whole budget (8 KB): grown from 1 KB it
	 * would be copied three times on its way there. A durable part (up to 1 MB) starts at 64 KB
	 * and grows as needed, so that a statement of a few rows does not take a megabyte.
	 */
	p.part_room = w->durable ? 65536 : pg_nextpower2_32((uint32) Max(p.budget, 1024) + 1);
	initStringInfo(&p.elem);
	/* What one row's values cost is freed before the next row. */
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pgfanout row", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(rowcxt);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		bool		ins = TRIGGER_FIRED_BY_INSERT(td->tg_event);
		Tuplestorestate *ts = ins ? td->tg_newtable : td->tg_oldtable;
		Image		img = {0};

		img.slot = open_transition(ts, desc, p.cxt);
		while (next_row(ts, img.slot, p.cxt))
		{
			add_element(&p, ins ? &img : NULL, ins ? NULL : &img);
			MemoryContextReset(rowcxt);
		}
		ExecDropSingleTupleTableSlot(img.slot);
	}
	else
	{
		Image		n = {0},
					o = {0};

		n.slot = open_transition(td->tg_newtable, desc, p.cxt);
		o.slot = open_transition(td->tg_oldtable, desc, p.cxt);
		for (;;)
		{
			bool		has_n = next_row(td->tg_newtable, n.slot, p.cxt);
			bool		has_o = next_row(td->tg_oldtable, o.slot, p.cxt);

			if (!has_n && !has_o)
				break;
			MemoryContextReset(rowcxt);
			if (has_n && has_o && (w->nkeycols == 0 || same_key(w, &n, &o)))
			{
				if (row_changed(w, &n, &o))
					add_element(&p, &n, &o);
				continue;
			}
			if (has_n)
				add_element(&p, &n, NULL);
			if (has_o)
				defer_element(&p, &o);
		}
		foreach(lc, p.deferred)
		{
			resetStringInfo(&p.elem);
			appendStringInfoString(&p.elem, (char *) lfirst(lc));
			pack(&p);
		}
		ExecDropSingleTupleTableSlot(n.slot);
		ExecDropSingleTupleTableSlot(o.slot);
	}
	MemoryContextSwitchTo(p.cxt);
	MemoryContextDelete(rowcxt);

	nparts = list_length(p.parts);
	if (nparts == 0)
		return PointerGetDatum(NULL);	/* no row changed */
	initStringInfo(&msg);
	k = 0;
	foreach(lc, p.parts)
	{
		StringInfo	rows = (StringInfo) lfirst(lc);

		resetStringInfo(&msg);
		appendBinaryStringInfo(&msg, head.data, head.len);
		appendStringInfo(&msg, ",\"part\":%d,\"parts\":%d,\"rows\":[", ++k, nparts);
		appendBinaryStringInfo(&msg, rows->data, rows->len);
		appendStringInfoChar(&msg, ']');
		appendBinaryStringInfo(&msg, tail.data, tail.len);
		if (w->durable)
			last_id = outbox_insert(w->channel, msg.data);
		else
			Async_Notify(w->channel, msg.data);
	}
	if (w->durable)
		ring_doorbell(w->channel, last_id);
	return PointerGetDatum(NULL);
}

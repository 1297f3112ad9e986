/*
 * ctl_fmt.c - readable views of /queues and /jobs/<id>, and the meaning
 * of an answer to POST /reload, for sluicectl.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_fmt.h"

#define JOB_LABEL_WIDTH 11
#define RESTART_MAX 1024             /* bytes of the restart_needed list */
#define MESSAGE_MAX 4096             /* bytes of a reload error shown */
/* A timestamp below this is in seconds, above it in milliseconds. */
#define SECONDS_MAX 100000000000.0

/* --- small things --- */

bool ctl_job_id_valid(const char *id)
{
	if (strncmp(id, "job_", 4) != 0 || strlen(id) != 4 + CTL_JOB_ID_HEX)
		return false;
	for (id += 4; *id; id++)
		if (!((*id >= '0' && *id <= '9') || (*id >= 'a' && *id <= 'f')))
			return false;
	return true;
}

void ctl_fmt_time(int64_t ms, char buf[CTL_TIME_LEN])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (ms < 0 || !gmtime_r(&secs, &tm)) {
		strcpy(buf, "-");
		return;
	}
	n = strftime(buf, CTL_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, CTL_TIME_LEN - n, ".%03dZ", (int)(ms % 1000));
}

void ctl_fmt_duration(int64_t ms, char buf[CTL_DURATION_LEN])
{
	if (ms < 0)
		snprintf(buf, CTL_DURATION_LEN, "-");
	else if (ms < 1000)
		snprintf(buf, CTL_DURATION_LEN, "%" PRId64 "ms", ms);
	else if (ms < 60000)
		snprintf(buf, CTL_DURATION_LEN, "%.1fs", (double)ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, CTL_DURATION_LEN, "%" PRId64 "m%02" PRId64 "s",
		         ms / 60000, ms / 1000 % 60);
	else
		snprintf(buf, CTL_DURATION_LEN, "%" PRId64 "h%02" PRId64 "m",
		         ms / 3600000, ms / 60000 % 60);
}

char *ctl_defang(char *s)
{
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

/* A number or null as text: "2", "0.5", "-". malloc'd. */
static char *num_str(const json_t *v)
{
	char *s = NULL;
	int n;

	if (json_is_integer(v))
		n = asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		n = asprintf(&s, "%g", json_real_value(v));
	else if (json_is_string(v))
		n = asprintf(&s, "%s", json_string_value(v));
	else
		n = asprintf(&s, "-");
	return n < 0 ? NULL : ctl_defang(s);
}

/* A member that is a number, as a json_int_t; dflt when it is not. */
static json_int_t int_member(const json_t *o, const char *name,
                             json_int_t dflt)
{
	const json_t *v = json_object_get(o, name);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (json_int_t)json_real_value(v);
	return dflt;
}

/*
 * A URL without its user name, password and query, which may be
 * credentials: the user "u:pw" and query "?t=x" both become "***".
 * malloc'd.
 */
static char *url_redact(const char *url)
{
	const char *auth = strstr(url, "://");
	const char *end, *at = NULL, *q;
	char *s = NULL;

	auth = auth ? auth + 3 : url;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	q = strchr(end, '?');
	if (asprintf(&s, "%.*s%s%.*s%s", (int)(auth - url), url,
	             at ? "***@" : "",
	             (int)((q ? q : end + strlen(end)) - (at ? at + 1 : auth)),
	             at ? at + 1 : auth, q ? "?***" : "") < 0)
		return NULL;
	return ctl_defang(s);
}

/* --- /queues --- */

enum { COL_DEST, COL_KEY, COL_MODE, COL_RATE, COL_CONC, COL_WAITING,
       COL_IN_FLIGHT, COL_PAUSED, COL_IDLE, STATUS_COLS };

struct table {
	char **cells;                /* rows * STATUS_COLS, malloc'd */
	size_t rows;
	size_t width[STATUS_COLS];
};

static const char *const status_head[STATUS_COLS] = {
	"DESTINATION", "KEY", "MODE", "RATE", "CONCURRENCY", "WAITING",
	"IN FLIGHT", "PAUSED", "IDLE",
};
/* Counts and durations are right-aligned, the rest left. */
static const bool status_right[STATUS_COLS] = {
	false, false, false, false, false, true, true, true, true,
};

static void table_done(struct table *t)
{
	for (size_t i = 0; t->cells && i < t->rows * STATUS_COLS; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* "VALUE NOTE", or VALUE alone when note is NULL. malloc'd. */
static char *noted(const json_t *v, const char *note)
{
	char *n = num_str(v), *s = NULL, *shown;

	if (!n || !note)
		return n;
	shown = strdup(note);
	if (shown && asprintf(&s, "%s %s", n, ctl_defang(shown)) < 0)
		s = NULL;
	free(shown);
	free(n);
	return s;
}

/*
 * The rate in force and where it comes from: "2 configured", "10 quota",
 * "6 probe"; "unpaced" for a frugal queue not yet pushed back. A daemon
 * that names no source: its learned rate ("0.5 learned"), else the
 * configured one.
 */
static char *rate_str(const json_t *q)
{
	const char *src = json_string_value(json_object_get(q, "rate_source"));
	const char *mode = json_string_value(json_object_get(q, "mode"));
	const json_t *rate = json_object_get(q, "rate");
	const json_t *learned = json_object_get(q, "learned_rps");

	if (mode && strcmp(mode, "frugal") == 0 && json_is_number(rate) &&
	    json_number_value(rate) == 0)
		return strdup("unpaced");
	if (src && json_is_number(rate))
		return noted(rate, src);
	if (json_is_number(learned))
		return noted(learned, "learned");
	return noted(json_object_get(q, "rps"), "configured");
}

/* The cap in force: "4", or "1 learned". */
static char *concurrency_str(const json_t *q)
{
	const json_t *learned = json_object_get(q, "learned_concurrency");

	if (json_is_number(learned))
		return noted(learned, "learned");
	return num_str(json_object_get(q, "concurrency"));
}

static char *duration_str(json_int_t ms, bool dash_when_zero)
{
	char buf[CTL_DURATION_LEN];

	ctl_fmt_duration(dash_when_zero && ms == 0 ? -1 : (int64_t)ms, buf);
	return strdup(buf);
}

static int queue_row(const json_t *q, char *row[STATUS_COLS])
{
	const json_t *key = json_object_get(q, "key");
	const json_t *mode = json_object_get(q, "mode");

	row[COL_DEST] = num_str(json_object_get(q, "destination"));
	row[COL_KEY] = json_is_string(key) ? num_str(key) : strdup("-");
	row[COL_MODE] = json_is_string(mode) ? num_str(mode) : strdup("-");
	row[COL_RATE] = rate_str(q);
	row[COL_CONC] = concurrency_str(q);
	row[COL_WAITING] = num_str(json_object_get(q, "waiting"));
	row[COL_IN_FLIGHT] = num_str(json_object_get(q, "in_flight"));
	row[COL_PAUSED] = duration_str(int_member(q, "paused_ms", 0), true);
	row[COL_IDLE] = duration_str(int_member(q, "idle_ms", -1), false);
	for (size_t c = 0; c < STATUS_COLS; c++)
		if (!row[c])
			return -ENOMEM;
	return 0;
}

/* A string member, or "" (an anonymous queue's null key sorts first). */
static const char *str_member(const json_t *o, const char *name)
{
	const char *v = json_string_value(json_object_get(o, name));

	return v ? v : "";
}

/* Rows by destination, then key: the same order every time. */
static int queue_cmp(const void *a, const void *b)
{
	const json_t *qa = *(const json_t *const *)a;
	const json_t *qb = *(const json_t *const *)b;
	int r = strcmp(str_member(qa, "destination"),
	               str_member(qb, "destination"));

	return r ? r : strcmp(str_member(qa, "key"), str_member(qb, "key"));
}

static int table_fill(struct table *t, const json_t *list)
{
	size_t n = json_array_size(list);
	const json_t **sorted;
	int r = 0;

	t->cells = calloc((n + 1) * STATUS_COLS, sizeof(*t->cells));
	if (!t->cells)
		return -ENOMEM;
	t->rows = n + 1;
	for (size_t c = 0; c < STATUS_COLS; c++) {
		t->cells[c] = strdup(status_head[c]);
		if (!t->cells[c])
			return -ENOMEM;
	}
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sorted[i] = json_array_get(list, i);
		if (!json_is_object(sorted[i])) {
			free(sorted);
			return -EINVAL;
		}
	}
	qsort(sorted, n, sizeof(*sorted), queue_cmp);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = queue_row(sorted[i], t->cells + (i + 1) * STATUS_COLS);
	free(sorted);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->rows * STATUS_COLS; i++) {
		size_t len = strlen(t->cells[i]);

		if (len > t->width[i % STATUS_COLS])
			t->width[i % STATUS_COLS] = len;
	}
	return 0;
}

static void table_print(FILE *out, const struct table *t)
{
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < STATUS_COLS; c++) {
			const char *cell = t->cells[r * STATUS_COLS + c];
			int w = (int)t->width[c];
			bool last = c + 1 == STATUS_COLS;

			if (status_right[c])
				fprintf(out, "%*s", w, cell);
			else
				fprintf(out, "%-*s", last ? 0 : w, cell);
			fputs(last ? "\n" : "  ", out);
		}
	}
}

/* A member's name as words: "queue_full" is "queue full". */
static void print_name(FILE *out, const char *name)
{
	for (const char *p = name; *p; p++) {
		if (*p == '_')
			fputc(' ', out);
		else
			fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
	}
}

/*
 * "queues 1, waiting 0, in flight 0", then every other number the
 * answer has ("requests 3, attempts 3, ..."), so new counters show up.
 */
static void print_totals(FILE *out, json_t *q)
{
	static const char *const totals[] = { "queues", "waiting",
	                                      "in_flight" };
	const char *name;
	json_t *v;
	const char *sep = "";

	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		fputs(i ? ", " : "", out);
		print_name(out, totals[i]);
		fprintf(out, " %" JSON_INTEGER_FORMAT,
		        int_member(q, totals[i], 0));
	}
	fputc('\n', out);
	json_object_foreach(q, name, v) {
		bool total = false;

		for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++)
			total = total || strcmp(name, totals[i]) == 0;
		if (total || !json_is_number(v))
			continue;
		fprintf(out, "%s", sep);
		print_name(out, name);
		if (json_is_integer(v))
			fprintf(out, " %" JSON_INTEGER_FORMAT,
			        json_integer_value(v));
		else
			fprintf(out, " %g", json_real_value(v));
		sep = ", ";
	}
	if (*sep)
		fputc('\n', out);
}

int ctl_print_queues(FILE *out, json_t *q)
{
	const json_t *list = json_object_get(q, "list");
	struct table t = { NULL, 0, { 0 } };
	int r;

	if (!json_is_object(q) || !json_is_array(list))
		return -EINVAL;
	print_totals(out, q);
	if (json_array_size(list) == 0) {
		fprintf(out, "\nno queues\n");
		return 0;
	}
	r = table_fill(&t, list);
	if (r == 0) {
		fputc('\n', out);
		table_print(out, &t);
	}
	table_done(&t);
	return r;
}

/* --- /jobs/<id> --- */

/* A timestamp as ISO 8601: unix ms or seconds, or a string as given. */
static void time_str(const json_t *v, char buf[CTL_TIME_LEN])
{
	double d;

	if (json_is_string(v)) {
		snprintf(buf, CTL_TIME_LEN, "%s", json_string_value(v));
		ctl_defang(buf);
		return;
	}
	if (!json_is_number(v) || json_number_value(v) <= 0) {
		strcpy(buf, "-");
		return;
	}
	d = json_number_value(v);
	if (d < SECONDS_MAX)
		d *= 1000;
	ctl_fmt_time(isfinite(d) && d < 1e15 ? (int64_t)d : -1, buf);
}

/*
 * The time called name ("created", "finished", ...): in a "timestamps"
 * object or at the top, as name, name_at or name_ms. NULL when absent.
 */
static const json_t *job_time(const json_t *job, const char *name)
{
	static const char *const suffixes[] = { "", "_at", "_ms" };
	const json_t *in[2] = { json_object_get(job, "timestamps"), job };
	char key[64];

	for (size_t i = 0; i < 2; i++) {
		if (!json_is_object(in[i]))
			continue;
		for (size_t k = 0; k < 3; k++) {
			const json_t *v;

			snprintf(key, sizeof(key), "%s%s", name, suffixes[k]);
			v = json_object_get(in[i], key);
			if (v && !json_is_null(v))
				return v;
		}
	}
	return NULL;
}

static void print_label(FILE *out, const char *label)
{
	fprintf(out, "%-*s", JOB_LABEL_WIDTH, label);
}

/* "label  value" with a string member (defanged), or "-". */
static void print_str_line(FILE *out, const char *label, const json_t *v)
{
	char *s = num_str(v);

	print_label(out, label);
	fprintf(out, "%s\n", s ? s : "?");
	free(s);
}

static void print_time_line(FILE *out, const char *label,
                            const json_t *job, const char *name)
{
	char buf[CTL_TIME_LEN];

	time_str(job_time(job, name), buf);
	print_label(out, label);
	fprintf(out, "%s\n", buf);
}

/* "done (success)": the state, and the outcome when the job says it. */
static void print_state(FILE *out, const json_t *job)
{
	const json_t *success = json_object_get(job, "success");
	const json_t *status = json_object_get(job, "status");
	char *state = num_str(json_object_get(job, "state"));
	char *outcome = NULL;

	if (json_is_boolean(success))
		outcome = strdup(json_is_true(success) ? "success" : "failed");
	else if (json_is_string(status))
		outcome = num_str(status);
	print_label(out, "state");
	fprintf(out, "%s", state ? state : "?");
	if (outcome)
		fprintf(out, " (%s)", outcome);
	fputc('\n', out);
	free(state);
	free(outcome);
}

static void print_delivery(FILE *out, const json_t *d)
{
	char *state = num_str(json_object_get(d, "state"));
	const json_t *url = json_object_get(d, "url");
	char *u = json_is_string(url) ? url_redact(json_string_value(url))
	                              : NULL;
	const json_t *err = json_object_get(d, "last_error");
	char when[CTL_TIME_LEN];

	fprintf(out, "  %-10s %s\n", state ? state : "?", u ? u : "-");
	fprintf(out, "  %-10s attempts %" JSON_INTEGER_FORMAT, "",
	        int_member(d, "attempts", 0));
	if (int_member(d, "last_status", 0) > 0)
		fprintf(out, ", last status %" JSON_INTEGER_FORMAT,
		        int_member(d, "last_status", 0));
	time_str(json_object_get(d, "delivered_at"), when);
	if (strcmp(when, "-") != 0)
		fprintf(out, ", delivered %s", when);
	time_str(json_object_get(d, "next_at"), when);
	if (strcmp(when, "-") != 0)
		fprintf(out, ", next try %s", when);
	fputc('\n', out);
	if (json_is_string(err)) {
		char *e = num_str(err);

		fprintf(out, "  %-10s last error: %s\n", "", e ? e : "?");
		free(e);
	}
	free(state);
	free(u);
}

/*
 * Whether the quorum is met: "quorum 1 met", "quorum 2 not met yet"
 * while deliveries are pending, "quorum 1 missed" when none is. NULL
 * when the job does not say.
 */
static const char *quorum_state(const json_t *job, size_t pending)
{
	const json_t *delivered = json_object_get(job, "delivered");

	if (!json_is_boolean(delivered) ||
	    !json_is_integer(json_object_get(job, "quorum")))
		return NULL;
	if (json_is_true(delivered))
		return "met";
	return pending ? "not met yet" : "missed";
}

static void print_deliveries(FILE *out, const json_t *job)
{
	const json_t *list = json_object_get(job, "deliveries");
	size_t n = json_array_size(list), done = 0, pending = 0, i;
	const json_t *d;
	const char *quorum;

	json_array_foreach(list, i, d) {
		const char *s = json_string_value(json_object_get(d, "state"));

		done += s && strcmp(s, "delivered") == 0;
		pending += s && strcmp(s, "pending") == 0;
	}
	print_label(out, "deliveries");
	if (!json_is_array(list)) {
		fprintf(out, "-\n");
		return;
	}
	fprintf(out, "%zu of %zu delivered", done, n);
	quorum = quorum_state(job, pending);
	if (quorum)
		fprintf(out, ", quorum %" JSON_INTEGER_FORMAT " %s",
		        int_member(job, "quorum", 0), quorum);
	fputc('\n', out);
	json_array_foreach(list, i, d)
		if (json_is_object(d))
			print_delivery(out, d);
}

/* "request    POST http://api.example.com:80/v1/items", when known. */
static void print_request(FILE *out, const json_t *job)
{
	const json_t *method = json_object_get(job, "method");
	char *m, *d, *p;

	if (!json_is_string(method))
		return;
	m = num_str(method);
	d = num_str(json_object_get(job, "destination"));
	p = json_is_string(json_object_get(job, "path"))
	    ? num_str(json_object_get(job, "path")) : strdup("");
	print_label(out, "request");
	fprintf(out, "%s %s%s\n", m ? m : "?", d ? d : "?", p ? p : "");
	free(m);
	free(d);
	free(p);
}

/* "error      upstream_connect: ...", when the job ended with one. */
static void print_error(FILE *out, const json_t *job)
{
	const json_t *e = json_object_get(job, "error");
	const json_t *msg = json_object_get(e, "message");
	char *code, *m;

	if (!json_is_object(e))
		return;
	code = num_str(json_object_get(e, "code"));
	m = json_is_string(msg) ? num_str(msg) : NULL;
	print_label(out, "error");
	fprintf(out, "%s%s%s\n", code ? code : "?", m ? ": " : "",
	        m ? m : "");
	free(code);
	free(m);
}

int ctl_print_job(FILE *out, const json_t *job)
{
	const json_t *resp = json_object_get(job, "response");
	const json_t *id = json_object_get(job, "job_id");

	if (!json_is_object(job))
		return -EINVAL;
	print_str_line(out, "job", id ? id : json_object_get(job, "id"));
	print_request(out, job);
	print_state(out, job);
	print_str_line(out, "attempts", json_object_get(job, "attempts"));
	print_time_line(out, "created", job, "created");
	print_time_line(out, "finished", job, "finished");
	print_str_line(out, "status", json_is_object(resp)
	               ? json_object_get(resp, "status_code") : NULL);
	print_error(out, job);
	print_deliveries(out, job);
	return 0;
}

/* --- POST /reload --- */

/* The "error" member of an answer, or "". */
static const char *error_code(const json_t *j)
{
	const char *v = json_string_value(json_object_get(j, "error"));

	return v ? v : "";
}

/* "listen, state_dir": the names of restart_needed; NULL when none. */
static int restart_list(const json_t *list, char **ret)
{
	char *s = NULL;
	size_t len = 0, i;
	const json_t *v;

	*ret = NULL;
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);
		size_t n = name ? strlen(name) : 0;
		char *p;

		if (n == 0 || len + n + 2 >= RESTART_MAX)
			continue;
		p = realloc(s, len + n + 3);
		if (!p) {
			free(s);
			return -ENOMEM;
		}
		s = p;
		len += (size_t)sprintf(s + len, "%s%s", len ? ", " : "", name);
	}
	*ret = s ? ctl_defang(s) : NULL;
	return 0;
}

/* The message with every control character but '\n' as '?'. */
static char *message_lines(const char *m)
{
	char *s = strndup(m, MESSAGE_MAX);
	size_t n;

	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f)
			*p = '?';
	n = strlen(s);
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

int ctl_reload_parse(long status, const char *body, size_t len,
                     struct ctl_reload *ret)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	struct ctl_reload r = { CTL_RELOAD_UNEXPECTED, NULL, NULL };
	int err = 0;

	if (status == 200 && json_is_true(json_object_get(j, "reloaded"))) {
		r.outcome = CTL_RELOADED;
		err = restart_list(json_object_get(j, "restart_needed"),
		                   &r.restart);
	} else if (status == 400 &&
	           strcmp(error_code(j), "invalid_configuration") == 0 &&
	           m && *m) {
		r.outcome = CTL_RELOAD_INVALID;
		r.message = message_lines(m);
		if (!r.message)
			err = -ENOMEM;
	} else if (status == 503 &&
	           strcmp(error_code(j), "reload_in_progress") == 0) {
		r.outcome = CTL_RELOAD_BUSY;
	}
	json_decref(j);
	if (err < 0) {
		ctl_reload_done(&r);
		return err;
	}
	*ret = r;
	return 0;
}

void ctl_reload_done(struct ctl_reload *r)
{
	if (!r)
		return;
	free(r->restart);
	free(r->message);
	r->restart = NULL;
	r->message = NULL;
}

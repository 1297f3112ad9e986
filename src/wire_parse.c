/*
 * wire_parse.c - HTTP/1.1 request syntax and framing (RFC 9112), byte by
 * byte, across the requests of a connection. See wire.h for why;
 * doc/ARCHITECTURE.md for the picture.
 *
 * The parser accepts a strict subset of RFC 9112 on which libmicrohttpd
 * 0.9.75 and any origin agree byte for byte: it must never take for a
 * body what libmicrohttpd takes for a head, or the heads it checks would
 * not be the heads libmicrohttpd parses. So where libmicrohttpd is
 * lenient or quirky (trailing space in Content-Length or
 * Transfer-Encoding, transfer codings other than a lone "chunked",
 * whitespace in a chunk-size line) the request is refused.
 */
#include <errno.h>
#include <string.h>

#include "ascii.h"
#include "wire.h"

/* What a field costs in libmicrohttpd's pool besides its bytes. */
#define FIELD_COST 56
/* Chunk extensions longer than this are refused. */
#define CHUNK_EXT_MAX 1024

#define C_TCHAR 0x01   /* token character (RFC 9110 section 5.6.2) */
#define C_VALUE 0x02   /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x04  /* request-target byte: VCHAR, obs-text */
#define C_HEX 0x08

#define TVT (C_TCHAR | C_VALUE | C_TARGET)
#define VT (C_VALUE | C_TARGET)

static const unsigned char cls[256] = {
	['\t'] = C_VALUE, [' '] = C_VALUE,
	['!'] = TVT, ['"'] = VT, ['#' ... '\''] = TVT, ['(' ... ')'] = VT,
	['*' ... '+'] = TVT, [','] = VT, ['-' ... '.'] = TVT, ['/'] = VT,
	['0' ... '9'] = TVT | C_HEX, [':' ... '@'] = VT,
	['A' ... 'F'] = TVT | C_HEX, ['G' ... 'Z'] = TVT,
	['[' ... ']'] = VT, ['^' ... '`'] = TVT,
	['a' ... 'f'] = TVT | C_HEX, ['g' ... 'z'] = TVT,
	['{'] = VT, ['|'] = TVT, ['}'] = VT, ['~'] = TVT,
	[0x80 ... 0xff] = VT,
};

static const struct wire_error
	e_line = { 400, "bad_request", "malformed request line; expected "
	           "'METHOD http://host/path HTTP/1.1'" },
	e_method = { 400, "bad_request", "the method is not a token" },
	e_target = { 400, "bad_request",
	             "a control byte or NUL in the request target" },
	e_version = { 400, "bad_request", "malformed HTTP version" },
	e_version_high = { 505, "http_version_not_supported",
	                   "only HTTP/1.0 and HTTP/1.1 are supported" },
	e_bare_cr = { 400, "bad_request", "a bare CR (not followed by LF)" },
	e_name = { 400, "bad_request",
	           "a field name is not a token (RFC 9112 section 5.1)" },
	e_name_ws = { 400, "bad_request", "a field name is not a token, or "
	              "whitespace precedes its colon (RFC 9112 section 5.1)" },
	e_fold = { 400, "bad_request",
	           "obsolete line folding (RFC 9112 section 5.2)" },
	e_first_ws = { 400, "bad_request", "whitespace before the first "
	               "field line (RFC 9112 section 2.2)" },
	e_nul = { 400, "bad_request", "NUL in a field value" },
	e_ctl = { 400, "bad_request", "a control byte in a field value" },
	e_cl = { 400, "bad_request", "Content-Length is not a number" },
	e_cl_conflict = { 400, "bad_request",
	                  "conflicting Content-Length fields" },
	e_cl_big = { 413, "body_too_large", "Content-Length is too large" },
	e_te = { 400, "bad_request", "Transfer-Encoding other than chunked" },
	e_te_twice = { 400, "bad_request",
	               "more than one Transfer-Encoding field" },
	e_te_cl = { 400, "bad_request",
	            "both Content-Length and Transfer-Encoding" },
	e_te_10 = { 400, "bad_request",
	            "Transfer-Encoding in an HTTP/1.0 request" },
	e_chunk = { 400, "bad_request", "malformed chunked body" },
	e_chunk_big = { 413, "body_too_large", "chunk size is too large" },
	e_head_big = { 431, "header_too_large", "the request head (or the "
	               "chunked trailer) is larger than max_header" },
	e_line_big = { 414, "uri_too_long",
	               "the request line is larger than max_header" };

enum {
	F_NONE,
	F_CL,                        /* Content-Length */
	F_TE                         /* Transfer-Encoding */
};


/*
 * A request head is open: from its first byte, stray empty lines before
 * the request line included (libmicrohttpd would take them for activity
 * and restart its idle timer), to the empty line that ends it.
 */
static bool in_head(const struct wire_parser *p)
{
	return (unsigned)(p->st - W_LEAD) <= W_END_CR - W_LEAD &&
	       !p->trailer;
}

static bool in_request_line(const struct wire_parser *p)
{
	return p->st >= W_METHOD && p->st <= W_RL_CR;
}

void wire_parser_init(struct wire_parser *p, size_t max_head)
{
	memset(p, 0, sizeof(*p));
	p->st = W_START;
	p->max_head = max_head;
}

static void message_begin(struct wire_parser *p)
{
	size_t max = p->max_head;

	wire_parser_init(p, max);
}

/* "HTTP/1.1" and friends; NULL when fine. */
static const struct wire_error *version_check(struct wire_parser *p)
{
	const char *v = p->version;

	if (p->tok != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return &e_version;
	if (v[5] != '1')
		return v[5] > '1' ? &e_version_high : &e_version;
	p->http10 = v[7] == '0';
	return NULL;
}

/* The name just read, if it is a framing field (never in a trailer). */
static unsigned framing_field(const struct wire_parser *p)
{
	if (p->trailer)
		return F_NONE;
	if (p->tok == 14 && memcmp(p->name, "content-length", 14) == 0)
		return F_CL;
	if (p->tok == 17 && memcmp(p->name, "transfer-encoding", 17) == 0)
		return F_TE;
	return F_NONE;
}

/* A field line ended: check a framing field's value. */
static const struct wire_error *field_end(struct wire_parser *p)
{
	uint64_t v = 0;

	p->head_cost += FIELD_COST;
	switch (p->field) {
	case F_CL:
		if (p->val_len == 0)
			return &e_cl;
		/* Only the first sizeof(p->val) bytes are kept. */
		for (unsigned i = 0; i < p->val_len && i < sizeof(p->val); i++)
			if (p->val[i] < '0' || p->val[i] > '9')
				return &e_cl;
		if (p->val_len > 18)
			return &e_cl_big;
		for (unsigned i = 0; i < p->val_len; i++)
			v = v * 10 + (uint64_t)(p->val[i] - '0');
		if (p->have_cl && v != p->cl)
			return &e_cl_conflict;
		p->have_cl = true;
		p->cl = v;
		break;
	case F_TE:
		if (p->have_te)
			return &e_te_twice;
		p->have_te = true;
		if (p->val_len != 7)
			return &e_te;
		for (unsigned i = 0; i < 7; i++)
			if (ascii_lower(p->val[i]) != "chunked"[i])
				return &e_te;
		break;
	default:
		break;
	}
	return NULL;
}

/* The empty line: the head (or trailer) is complete; how the body comes. */
static const struct wire_error *head_end(struct wire_parser *p)
{
	if (p->trailer) {
		message_begin(p);
		return NULL;
	}
	if (p->have_te) {
		if (p->have_cl)
			return &e_te_cl;
		if (p->http10)
			return &e_te_10;
		p->st = W_CHUNK_SIZE;
		p->digits = 0;
		p->left = 0;
	} else if (p->have_cl && p->cl > 0) {
		p->st = W_BODY;
		p->left = p->cl;
	} else {
		message_begin(p);
	}
	return NULL;
}

static const struct wire_error *chunk_size_end(struct wire_parser *p)
{
	if (p->left == 0) {
		/* The last chunk: the trailer section follows. */
		p->trailer = true;
		p->head_cost = 0;
		p->tok = 0;
		p->st = W_LINE;
	} else {
		p->st = W_CHUNK_DATA;
	}
	return NULL;
}

/*
 * The class of bytes that leave state st as it is (and need no other
 * bookkeeping than wire_parse's), or 0 for states read byte by byte.
 */
static unsigned char run_class(const struct wire_parser *p)
{
	switch (p->st) {
	case W_METHOD:
	case W_NAME:
		return C_TCHAR;
	case W_TARGET:
		return C_TARGET;
	case W_VALUE:
		/* A framing field's value is kept: byte by byte. */
		return p->field == F_NONE ? C_VALUE : 0;
	default:
		return 0;
	}
}

/* Adds name bytes, lower-cased, to the part of the name that is kept. */
static void keep_name(struct wire_parser *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p->tok < sizeof(p->name))
			p->name[p->tok] = ascii_lower(s[i]);
		if (p->tok < UINT32_MAX)
			p->tok++;
	}
}

/*
 * One byte in a state that reads bytes one at a time. Returns the error,
 * or NULL; p->st is the next state.
 */
static const struct wire_error *step(struct wire_parser *p, unsigned char c)
{
	unsigned k = cls[c];

	switch (p->st) {
	case W_START:
	case W_LEAD:
		if (c == '\n') {
			p->st = W_LEAD; /* a stray empty line (RFC 9112 2.2) */
			return NULL;
		}
		if (c == '\r') {
			p->st = W_START_CR;
			return NULL;
		}
		if (!(k & C_TCHAR))
			return &e_line;
		p->st = W_METHOD;
		p->tok = 1;
		return NULL;
	case W_START_CR:
		if (c != '\n')
			return &e_bare_cr;
		p->st = W_LEAD;
		return NULL;
	case W_METHOD:
		if (c == ' ') {
			p->st = W_TARGET;
			p->tok = 0;
			return NULL;
		}
		return k & C_TCHAR ? NULL : &e_method;
	case W_TARGET:
		if (c == ' ') {
			if (p->tok == 0)
				return &e_line;
			p->st = W_VERSION;
			p->tok = 0;
			return NULL;
		}
		if (c == '\r' || c == '\n')
			return &e_line;
		if (!(k & C_TARGET))
			return &e_target;
		p->tok++;
		return NULL;
	case W_VERSION:
		if (c == '\r' || c == '\n') {
			const struct wire_error *e = version_check(p);

			if (e)
				return e;
			p->st = c == '\r' ? W_RL_CR : W_LINE;
			p->tok = 0;
			return NULL;
		}
		if (p->tok >= 8)
			return &e_version;
		p->version[p->tok++] = (char)c;
		return NULL;
	case W_RL_CR:
		if (c != '\n')
			return &e_bare_cr;
		p->st = W_LINE;
		return NULL;
	case W_LINE:
		if (c == '\r') {
			p->st = W_END_CR;
			return NULL;
		}
		if (c == '\n')
			return head_end(p);
		if (c == ' ' || c == '\t')
			return p->tok ? &e_fold : &e_first_ws;
		if (!(k & C_TCHAR))
			return &e_name;
		p->st = W_NAME;
		p->tok = 1;
		p->name[0] = ascii_lower((char)c);
		return NULL;
	case W_NAME:
		if (c == ':') {
			p->field = framing_field(p);
			p->val_len = 0;
			p->st = W_OWS;
			return NULL;
		}
		if (c == ' ' || c == '\t')
			return &e_name_ws;
		if (!(k & C_TCHAR))
			return &e_name;
		if (p->tok < sizeof(p->name))
			p->name[p->tok] = ascii_lower((char)c);
		p->tok++;
		return NULL;
	case W_OWS:
	case W_VALUE:
		if (c == '\r') {
			p->st = W_VALUE_CR;
			return NULL;
		}
		if (c == '\n') {
			p->st = W_LINE;
			p->tok = 1; /* a field was seen */
			return field_end(p);
		}
		if (!(k & C_VALUE))
			return c == 0 ? &e_nul : &e_ctl;
		if (p->st == W_OWS && (c == ' ' || c == '\t'))
			return NULL;
		p->st = W_VALUE;
		if (p->field != F_NONE) {
			if (p->val_len < sizeof(p->val))
				p->val[p->val_len] = (char)c;
			if (p->val_len < UINT32_MAX)
				p->val_len++;
		}
		return NULL;
	case W_VALUE_CR:
		if (c != '\n')
			return &e_bare_cr;
		p->st = W_LINE;
		p->tok = 1;
		return field_end(p);
	case W_END_CR:
		if (c != '\n')
			return &e_bare_cr;
		return head_end(p);
	case W_CHUNK_SIZE:
		if (k & C_HEX) {
			unsigned d = c <= '9' ? (unsigned)(c - '0')
			             : (unsigned)(ascii_lower((char)c) - 'a' + 10);

			if (++p->digits > 15)
				return &e_chunk_big;
			p->left = p->left * 16 + d;
			return NULL;
		}
		if (p->digits == 0)
			return &e_chunk;
		if (c == ';') {
			p->st = W_CHUNK_EXT;
			p->tok = 0;
			return NULL;
		}
		if (c == '\r') {
			p->st = W_CHUNK_SIZE_CR;
			return NULL;
		}
		if (c == '\n')
			return chunk_size_end(p);
		return &e_chunk;
	case W_CHUNK_EXT:
		if (c == '\r') {
			p->st = W_CHUNK_SIZE_CR;
			return NULL;
		}
		if (c == '\n')
			return chunk_size_end(p);
		if (!(k & C_VALUE) || ++p->tok > CHUNK_EXT_MAX)
			return &e_chunk;
		return NULL;
	case W_CHUNK_SIZE_CR:
		if (c != '\n')
			return &e_chunk;
		return chunk_size_end(p);
	case W_CHUNK_END:
		if (c == '\r') {
			p->st = W_CHUNK_END_CR;
			return NULL;
		}
		if (c != '\n')
			return &e_chunk;
		/* fall through */
	case W_CHUNK_END_CR:
		if (c != '\n')
			return &e_chunk;
		p->st = W_CHUNK_SIZE;
		p->digits = 0;
		p->left = 0;
		return NULL;
	default:
		return &e_chunk; /* not reached: the runs are read by wire_parse */
	}
}

int wire_parse(struct wire_parser *p, const char *s, size_t n,
               struct wire_scan *ret)
{
	size_t i = 0;

	ret->head_at = in_head(p) ? WIRE_HEAD_BEFORE : WIRE_NO_HEAD;
	ret->msg_at = p->st == W_START ? WIRE_NO_HEAD : WIRE_HEAD_BEFORE;
	ret->err_at = 0;
	ret->err_in_head = false;
	if (p->st == W_FAILED)
		return -EBADMSG;
	while (i < n) {
		const struct wire_error *e;
		unsigned char k;
		bool head, now;

		if (p->st == W_BODY || p->st == W_CHUNK_DATA) {
			size_t run = n - i;

			if (run > p->left)
				run = (size_t)p->left;
			p->left -= run;
			i += run;
			if (p->left == 0) {
				if (p->st == W_CHUNK_DATA)
					p->st = W_CHUNK_END;
				else
					message_begin(p);
			}
			continue;
		}
		head = in_head(p);
		k = run_class(p);
		if (k) {
			/* A run of bytes that only move on: no step each. */
			size_t j = i;

			while (j < n && (cls[(unsigned char)s[j]] & k))
				j++;
			if (j > i) {
				if (p->st == W_NAME)
					keep_name(p, s + i, j - i);
				else if (p->st == W_TARGET)
					p->tok += (unsigned)(j - i);
				p->head_cost += j - i;
				i = j;
				if (p->head_cost > p->max_head) {
					e = in_request_line(p) ? &e_line_big
					                       : &e_head_big;
					goto fail;
				}
				continue;
			}
		}
		if (p->st == W_START)
			ret->head_at = ret->msg_at = i;
		e = step(p, (unsigned char)s[i]);
		if (e)
			goto fail;
		now = in_head(p);
		if (head || now || p->trailer) {
			if (++p->head_cost > p->max_head) {
				e = in_request_line(p) ? &e_line_big
				                       : &e_head_big;
				goto fail;
			}
		}
		if (head && !now)
			ret->head_at = WIRE_NO_HEAD;
		i++;
		continue;
fail:
		ret->err_at = i;
		ret->err_in_head = head || in_head(p) ||
		                   (p->st == W_START && !p->trailer);
		if (ret->err_in_head && ret->head_at == WIRE_NO_HEAD)
			ret->head_at = i;
		p->err = e;
		p->st = W_FAILED;
		return -EBADMSG;
	}
	return 0;
}

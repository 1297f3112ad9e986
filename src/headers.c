/*
 * headers.c - which header fields cross the proxy, and the lines of
 * curl's request header lists.
 *
 * The checks are called once per field of every request and response: no
 * allocation, and a switch on the name's length so that most fields cost
 * one comparison.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "headers.h"

#define SLUICE_PREFIX "x-ezthrottle-"
#define SLUICE_PREFIX_LEN (sizeof(SLUICE_PREFIX) - 1)


bool header_name_eq(const char *name, size_t len, const char *lit)
{
	return strlen(lit) == len && ascii_eq_n(name, lit, len);
}

bool header_is_sluice(const char *name, size_t len)
{
	return len >= SLUICE_PREFIX_LEN &&
	       ascii_eq_n(name, SLUICE_PREFIX, SLUICE_PREFIX_LEN);
}

bool header_listed_in(const char *conn, const char *name, size_t len)
{
	const char *p, *tok, *end;

	if (!conn || len == 0)
		return false;
	p = conn;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		tok = p;
		p += strcspn(p, ",");
		end = p;
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - tok) == len && ascii_eq_n(tok, name, len))
			return true;
		if (*p == '\0')
			return false;
		p++;
	}
}

/*
 * The hop-by-hop fields of RFC 9110 section 7.6.1 that both directions
 * drop, plus Proxy-Authorization and Proxy-Authenticate (credentials for
 * this proxy, never for the origin) and Content-Length (each side frames
 * its own body). The lengths are those of the literals.
 */
static bool is_hop_by_hop(const char *name, size_t len)
{
	switch (len) {
	case 2:
		return ascii_eq_n(name, "TE", 2);
	case 7:
		return ascii_eq_n(name, "Trailer", 7) ||
		       ascii_eq_n(name, "Upgrade", 7);
	case 10:
		return ascii_eq_n(name, "Connection", 10) ||
		       ascii_eq_n(name, "Keep-Alive", 10);
	case 14:
		return ascii_eq_n(name, "Content-Length", 14);
	case 16:
		return ascii_eq_n(name, "Proxy-Connection", 16);
	case 17:
		return ascii_eq_n(name, "Transfer-Encoding", 17);
	case 18:
		return ascii_eq_n(name, "Proxy-Authenticate", 18);
	case 19:
		return ascii_eq_n(name, "Proxy-Authorization", 19);
	default:
		return false;
	}
}

bool header_drop_request(const char *name, size_t len, const char *conn)
{
	if (is_hop_by_hop(name, len) || header_is_sluice(name, len))
		return true;
	/* The upstream client writes Host itself and handles Expect. */
	if (len == 4 && ascii_eq_n(name, "Host", 4))
		return true;
	if (len == 6 && ascii_eq_n(name, "Expect", 6))
		return true;
	return header_listed_in(conn, name, len);
}

bool header_drop_response(const char *name, size_t len, const char *conn)
{
	return is_hop_by_hop(name, len) || header_listed_in(conn, name, len);
}

bool header_name_ok(const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!ascii_is_tchar(name[i]))
			return false;
	return len > 0;
}

bool header_value_ok(const char *value, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/*
 * The first block holds a usual request's fields (the three removals and
 * a few more); each next one is twice the last. A waiting request keeps
 * its list: small blocks keep it small.
 */
#define HBLOCK_FIRST 256

struct hblock {
	struct hblock *next;
	size_t used, cap;
	_Alignas(struct curl_slist) char data[];
};

/* n bytes, aligned for a node, from l's newest block or a new one. */
static void *hlist_take(struct hlist *l, size_t n)
{
	struct hblock *b = l->blocks;
	size_t align = _Alignof(struct curl_slist);

	n = (n + align - 1) / align * align;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? 2 * b->cap : HBLOCK_FIRST;

		if (cap < n)
			cap = n;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = l->blocks;
		l->blocks = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

int header_list_add(struct hlist *l, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = value ? strlen(value) : 0;
	struct curl_slist *n;
	char *p;

	n = hlist_take(l, sizeof(*n) + nlen + vlen + 3);
	if (!n)
		return -ENOMEM;
	p = (char *)(n + 1);
	n->data = p;
	n->next = NULL;
	memcpy(p, name, nlen);
	p += nlen;
	if (!value) {
		*p++ = ':';
	} else if (vlen == 0) {
		*p++ = ';';
	} else {
		*p++ = ':';
		*p++ = ' ';
		memcpy(p, value, vlen);
		p += vlen;
	}
	*p = '\0';
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	return 0;
}

void header_list_free(struct hlist *l)
{
	struct hblock *b, *next;

	for (b = l->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
	*l = (struct hlist){ 0 };
}

int header_list_seal(struct hlist *l, bool has_accept, bool has_ctype)
{
	int r = header_list_add(l, "Expect", NULL);

	if (r == 0 && !has_accept)
		r = header_list_add(l, "Accept", NULL);
	if (r == 0 && !has_ctype)
		r = header_list_add(l, "Content-Type", NULL);
	return r;
}

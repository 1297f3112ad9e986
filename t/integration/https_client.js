#!/usr/bin/env node
// https_client.js - an HTTPS client for sluice's integration tests: Node
// with undici (npm's, not Node's bundled copy: node_undici in lib.sh
// installs it and prints the NODE_PATH).
//
//   NODE_PATH=$(node_undici) node https_client.js [OPTIONS] PROXY URL...
//
// PROXY is the proxy's URL (http://127.0.0.1:PORT): undici's ProxyAgent,
// which opens a CONNECT tunnel for every origin (http:// ones too, unless
// --no-tunnel), then TLS inside it for https:// ones.  "env" takes
// undici's EnvHttpProxyAgent instead (https_proxy, http_proxy, no_proxy and
// the upper-case names, from the environment); "-" means no proxy.
//
// The URLs are fetched one after the other with one agent, at most one
// connection per origin: the URLs of one origin go down one tunnel, one
// TLS session, keep-alive (unless an answer closes the connection).
//
// Options:
//   -X METHOD          method (default GET, or POST with -d)
//   -d DATA            request body; @FILE reads FILE
//   -H 'Name: value'   a request header (repeatable)
//   --requests JSON    a JSON array of {"url", "method", "headers" ({name:
//                      value} or [[name, value], ...]), "body"} requests,
//                      in place of the URLs (-X, -d, -H are defaults)
//   --ca FILE          trust FILE (PEM) for the origins' TLS, in place of
//                      Node's store; default $SLUICE_CA when set.  Without
//                      it, Node's store plus NODE_EXTRA_CA_CERTS, which
//                      undici honours for the TLS inside the tunnel too
//   --no-tunnel        http:// URLs go to the proxy in absolute form
//                      (undici's proxyTunnel: false) instead of CONNECT
//   --timeout MS       per request (headers, then body; default 30000)
//
// Output: one JSON line per response, in order:
//   {"url", "status", "headers": {lower-cased name: value, repeats joined
//    with ", "}, "body" (UTF-8, lossy for binary), "body_length",
//    "body_sha256"}
// On the first failure: a line {"url", "error", "code"} (code: the
// deepest cause's, e.g. UND_ERR_SOCKET, ERR_TLS_CERT_ALTNAME_INVALID,
// SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_VERIFY_LEAF_SIGNATURE), the message
// on stderr, exit status 1.  Usage errors: exit status 2.
'use strict'

const crypto = require('crypto')
const fs = require('fs')

// EnvHttpProxyAgent announces itself as experimental on every run.
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.code !== 'UNDICI-EHPA') console.error(String(w))
})

function usage (msg) {
  console.error('https_client.js: ' + msg)
  console.error('usage: https_client.js [-X METHOD] [-d DATA|@FILE] ' +
    "[-H 'Name: value']... [--ca FILE] [--no-tunnel] [--timeout MS] " +
    '[--requests JSON] PROXY|env|- [URL...]')
  process.exit(2)
}

function parseArgs (argv) {
  const o = { method: null, body: null, headers: [], ca: process.env.SLUICE_CA || null,
    tunnel: true, timeout: 30000, requests: null, proxy: null, urls: [] }
  const need = (i) => { if (i >= argv.length) usage('missing value for ' + argv[i - 1]); return argv[i] }
  let i = 0
  for (; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-X') o.method = need(++i)
    else if (a === '-d') {
      const d = need(++i)
      o.body = d.startsWith('@') ? fs.readFileSync(d.slice(1)) : d
    } else if (a === '-H') {
      const h = need(++i)
      const c = h.indexOf(':')
      if (c < 1) usage('bad header: ' + h)
      o.headers.push([h.slice(0, c).trim(), h.slice(c + 1).trim()])
    } else if (a === '--ca') o.ca = need(++i)
    else if (a === '--no-tunnel') o.tunnel = false
    else if (a === '--timeout') o.timeout = Number(need(++i))
    else if (a === '--requests') o.requests = JSON.parse(need(++i))
    else if (a === '--') { i++; break } else if (a.startsWith('-') && a !== '-') usage('unknown option ' + a)
    else break
  }
  const rest = argv.slice(i)
  if (rest.length < 1) usage('no PROXY')
  o.proxy = rest[0]
  o.urls = rest.slice(1)
  if (!o.requests && o.urls.length === 0) usage('no URL')
  return o
}

// A request's headers as a flat [name, value, name, value...] array, so
// repeated names survive.
function flatHeaders (defaults, h) {
  const out = []
  for (const [n, v] of defaults) out.push(n, v)
  if (Array.isArray(h)) for (const [n, v] of h) out.push(n, String(v))
  else if (h) for (const n of Object.keys(h)) out.push(n, String(h[n]))
  return out
}

function deepest (err) {
  let e = err
  while (e && e.cause) e = e.cause
  return e || err
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  let undici
  try {
    undici = require('undici')
  } catch (e) {
    console.error('https_client.js: cannot load undici (NODE_PATH=' +
      (process.env.NODE_PATH || '') + '): ' + e.message)
    process.exit(2)
  }
  const tls = o.ca ? { ca: fs.readFileSync(o.ca) } : {}
  // One connection per origin: without it, a request sent as soon as the
  // previous body has been read often finds that connection not yet free
  // and opens another (another tunnel).
  const common = { connect: tls, connections: 1, headersTimeout: o.timeout, bodyTimeout: o.timeout }
  let agent
  if (o.proxy === '-') {
    agent = new undici.Agent(common)
  } else if (o.proxy === 'env') {
    if (typeof undici.EnvHttpProxyAgent !== 'function') {
      console.error('https_client.js: this undici has no EnvHttpProxyAgent')
      process.exit(2)
    }
    agent = new undici.EnvHttpProxyAgent({ ...common, requestTls: tls, proxyTunnel: o.tunnel })
  } else {
    agent = new undici.ProxyAgent({ ...common, uri: o.proxy, requestTls: tls, proxyTunnel: o.tunnel })
  }

  const reqs = o.requests || o.urls.map((url) => ({ url }))
  let status = 0
  for (const r of reqs) {
    const body = r.body !== undefined ? r.body : o.body
    const method = r.method || o.method || (body != null ? 'POST' : 'GET')
    try {
      const res = await undici.request(r.url, {
        dispatcher: agent,
        method,
        headers: flatHeaders(o.headers, r.headers),
        body: body == null ? undefined : body
      })
      const buf = Buffer.from(await res.body.arrayBuffer())
      const headers = {}
      for (const [n, v] of Object.entries(res.headers)) {
        headers[n.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v
      }
      console.log(JSON.stringify({
        url: r.url,
        status: res.statusCode,
        headers,
        body: buf.toString('utf8'),
        body_length: buf.length,
        body_sha256: crypto.createHash('sha256').update(buf).digest('hex')
      }))
    } catch (err) {
      const d = deepest(err)
      const code = d.code || err.code || null
      let msg = err.message
      if (d !== err && d.message && d.message !== err.message) msg += ': ' + d.message
      console.log(JSON.stringify({ url: r.url, error: msg, code }))
      console.error('https_client.js: ' + r.url + ': ' + msg + (code ? ' (' + code + ')' : ''))
      status = 1
      break
    }
  }
  await agent.close().catch(() => {})
  process.exit(status)
}

main().catch((e) => {
  console.error('https_client.js: ' + (e && e.stack ? e.stack : e))
  process.exit(1)
})

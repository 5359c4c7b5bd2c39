// A real OpenID Provider for hubgate's end-to-end tests: panva's oidc-provider
// (pinned in package.json) on 127.0.0.1, configured from a JSON file that
// tests/e2e/oidc_provider.py writes, with a minimal login page of its own.
//
//   OIDC_PROVIDER_CONFIG=/tmp/.../config.json node provider.mjs
//
// The config file holds:
//   port, issuer             where to listen, and the issuer (http://127.0.0.1:PORT)
//   jwks_file                a JWKS of private RS256 keys; the first one signs,
//                            all of them are published at /jwks
//   cookie_keys              keys that sign oidc-provider's cookies
//   client                   one static confidential client: client_id,
//                            client_secret, redirect_uris, token_endpoint_auth_method
//                            and, for private_key_jwt, the client's keys: its
//                            jwks_uri or an inline jwks; for logout, optionally
//                            post_logout_redirect_uris and backchannel_logout_uri
//                            (then with backchannel_logout_session_required, so
//                            id_tokens and logout tokens carry sid)
//   accounts_file            a JSON file { login: { password, sub, claims: {...} } },
//                            read again at every lookup, so a test may change the
//                            accounts between two sign-ins without a restart
//   conform_id_token_claims  oidc-provider's conformIdTokenClaims: true (its default)
//                            puts scope claims in userinfo only when an access token
//                            is issued; false puts them in the id_token too
//   groups_scope             the scope that carries the custom `groups` claim
//
// Logout: RP-Initiated Logout (GET /session/end shows a plain confirm form with
// logout=yes, posted to /session/end/confirm) and Back-Channel Logout (on a
// confirmed logout it POSTs a logout_token to every client of the session that
// registered a backchannel_logout_uri; each delivery is logged as
// `backchannel ok|error ...`).
//
// devInteractions is off. The interaction is ours: GET /interaction/:uid shows a
// plain HTML form (login, password) posted to /interaction/:uid/login, and a
// second form posted to /interaction/:uid/abort answers access_denied (the user
// cancels). Consent is granted on its own, with provider.Grant, for whatever the
// client asked. Every request is logged on stdout, which the fixture keeps (for
// POST /token also whether an Authorization header came: oidc-provider accepts
// client_secret_basic and client_secret_post alike for a client registered with
// either, so the log is how a test tells which one a client used).

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.env.OIDC_PROVIDER_CONFIG;
if (!configPath) {
  console.error('provider.mjs: set OIDC_PROVIDER_CONFIG to the JSON config file');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const jwks = JSON.parse(readFileSync(config.jwks_file, 'utf8'));
// The accounts, read again at each lookup (the tests rewrite the file in one rename).
function accounts() {
  return JSON.parse(readFileSync(config.accounts_file, 'utf8'));
}
const groupsScope = config.groups_scope ?? 'profile';

const standardClaims = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
};
const claims = { ...standardClaims };
claims[groupsScope] = [...(claims[groupsScope] ?? []), 'groups'];

function accountBySub(sub) {
  return Object.values(accounts()).find((account) => account.sub === sub);
}

// A private_key_jwt client is known by its keys (jwks_uri or jwks), not a secret.
function client() {
  const {
    client_id, client_secret, redirect_uris, token_endpoint_auth_method, jwks_uri, jwks: keys,
    post_logout_redirect_uris, backchannel_logout_uri,
  } = config.client;
  const registered = {
    client_id,
    redirect_uris,
    token_endpoint_auth_method,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  };
  if (token_endpoint_auth_method !== 'private_key_jwt') registered.client_secret = client_secret;
  if (jwks_uri) registered.jwks_uri = jwks_uri;
  if (keys) registered.jwks = keys;
  if (post_logout_redirect_uris) registered.post_logout_redirect_uris = post_logout_redirect_uris;
  if (backchannel_logout_uri) {
    registered.backchannel_logout_uri = backchannel_logout_uri;
    registered.backchannel_logout_session_required = true;
  }
  return registered;
}

const provider = new Provider(config.issuer, {
  clients: [client()],
  jwks,
  cookies: { keys: config.cookie_keys },
  claims,
  scopes: ['openid', 'email', 'profile', groupsScope],
  conformIdTokenClaims: config.conform_id_token_claims ?? true,
  responseTypes: ['code'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The confirm form, with the "yes" inside it (oidc-provider's own page puts
      // its buttons outside the form, which the tests' form parser cannot press).
      async logoutSource(ctx, form) {
        const yes = '<input type="hidden" name="logout" value="yes"><button type="submit">Yes, sign me out</button></form>';
        ctx.body = page('Sign out', form.replace('</form>', yes));
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
      },
    },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(ctx, sub) {
    const account = accountBySub(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account.claims };
      },
    };
  },
  // oidc-provider's SSRF guard refuses special-use addresses, loopback too; the
  // client's jwks_uri is hubgate on 127.0.0.1 here, so loopback URLs go without it.
  fetch(url, options) {
    const { dispatcher, ...unguarded } = options;
    return globalThis.fetch(url, new URL(url).hostname === '127.0.0.1' ? unguarded : options);
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre id="error">${escape(JSON.stringify(out, null, 2))}</pre>`);
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error']) {
  provider.on(event, (ctx, error) => {
    const detail = [error?.error_detail, error?.cause?.message, error?.cause?.error_description].filter(Boolean).join('; ');
    console.log(`event ${event}: ${error?.name} ${error?.message} ${error?.error_description ?? ''} ${detail}`.trimEnd());
  });
}

provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  console.log(`backchannel ok ${client.clientId} sub=${accountId} sid=${sid}`);
});
provider.on('backchannel.error', (ctx, error, client, accountId, sid) => {
  console.log(`backchannel error ${client.clientId} sub=${accountId} sid=${sid}: ${error?.message}`);
});

// -- the interaction -----------------------------------------------------------

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>
${body}
</body></html>
`;
}

function loginPage(uid, clientId, message = '') {
  const notice = message ? `<p id="message">${escape(message)}</p>` : '';
  return page(`Sign in to ${clientId}`, `${notice}
<form method="post" action="/interaction/${escape(uid)}/login" id="login">
  <label>Login <input type="text" name="login" autocomplete="username"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort" id="abort">
  <button type="submit">Cancel</button>
</form>`);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantConsent(req, res, details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p>This interaction belongs to another sign-in.</p>'));
    return;
  }
  const prompt = details.prompt.name;
  if (req.method === 'GET' && !action) {
    if (prompt === 'login') {
      send(res, 200, loginPage(uid, details.params.client_id));
    } else if (prompt === 'consent') {
      await grantConsent(req, res, details);
    } else {
      send(res, 400, page('Error', `<p>Unknown prompt ${escape(prompt)}.</p>`));
    }
    return;
  }
  if (req.method !== 'POST' || !['login', 'abort'].includes(action)) {
    send(res, 405, page('Error', '<p>Method not allowed.</p>'));
    return;
  }
  const form = await formBody(req);
  if (action === 'abort') {
    const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt !== 'login') {
    send(res, 400, page('Error', '<p>This interaction is not a login.</p>'));
    return;
  }
  const account = accounts()[form.get('login') ?? ''];
  if (!account || account.password !== form.get('password')) {
    send(res, 200, loginPage(uid, details.params.client_id, 'Invalid login or password.'));
    return;
  }
  const result = { login: { accountId: account.sub } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// -- the server ---------------------------------------------------------------------

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/;
const handleProvider = provider.callback();

const server = createServer(async (req, res) => {
  const path = new URL(req.url, config.issuer).pathname;
  // For the token endpoint, whether the client authenticated in the header (basic).
  const auth = path === '/token' ? ` authorization_header=${req.headers.authorization ? 'yes' : 'no'}` : '';
  res.on('finish', () => console.log(`${req.method} ${path} ${res.statusCode}${auth}`));
  const matched = INTERACTION.exec(path);
  if (!matched) {
    handleProvider(req, res);
    return;
  }
  try {
    await interaction(req, res, matched[1], matched[2]);
  } catch (error) {
    console.log(`interaction error: ${error?.name} ${error?.message}`);
    if (!res.headersSent) {
      send(res, 400, page('Error', `<pre id="error">${escape(error?.name)}: ${escape(error?.message)}</pre>`));
    } else {
      res.end();
    }
  }
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer} (keys ${jwks.keys.map((k) => k.kid).join(', ')})`);
});

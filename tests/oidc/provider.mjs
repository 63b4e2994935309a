// A real, certified OpenID provider for the OpenID Connect tests: panva's `oidc-provider`
// over plain http on 127.0.0.1, configured by a JSON file (see tests/src/oidc.rs for the
// schema and the defaults the tests use).
//
//   node provider.mjs CONFIG.json [PORT]    PORT 0 or none: the system picks one
//   node provider.mjs --generate-jwks       prints a fresh private JWKS (one RS256 key)
//
// Once listening it prints one JSON line on stdout:
//   {"event":"ready","issuer":"http://127.0.0.1:PORT","port":PORT,"kids":[...]}
// and then one line per event a test may want to wait for ("login", "login_failed",
// "consent", "grant", "error"). Everything else (oidc-provider's warnings) goes to stderr.
//
// Login is the provider's own page (a form at /interaction/UID checking the configured
// password), not oidc-provider's development interactions. The acr and amr of the session
// come from the user's `mfa` flag. Consent is granted without a page for clients marked
// `first_party`, and by an "Allow" button otherwise.
//
// A misbehaving provider, for the tests of the relay's refusals: the config key
// `tamper_id_token` rewrites the ID token of every token-endpoint response (both grants),
// after oidc-provider made it, and prints {"event":"tampered","kind":KIND}:
//   "audience"     the same claims, `aud` set to `tamper_audience` (default "other-app"),
//                  signed with the provider's own key (a token for another application)
//   "foreign_key"  the same claims signed with a fresh key that is not in the JWKS, the
//                  header still naming the provider's key id (a forged token)
//   "foreign_kid"  the same, the header naming the fresh key's own id (not in the JWKS)
//   "expired"      `exp` 10 minutes ago and `iat`/`auth_time` an hour before that, signed
//                  with the provider's own key
//   "replay"       the first ID token it issued, unchanged, instead of every later one
//                  (the second sign-in gets the first one's token, nonce included)
// Re-signing uses the token's own header (RS256: RSASSA-PKCS1-v1_5 with SHA-256, Node's
// crypto) and the first key of `jwks`.

import { readFileSync } from 'node:fs';
import {
  randomBytes, generateKeyPairSync, randomUUID, createPrivateKey, sign,
} from 'node:crypto';
import { createServer } from 'node:http';

const ACR_MFA = 'urn:sightline:mfa';
const ACR_PWD = 'urn:sightline:pwd';

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function generateJwks() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' }] };
}

if (process.argv[2] === '--generate-jwks') {
  process.stdout.write(`${JSON.stringify(generateJwks())}\n`);
  process.exit(0);
}

const [configPath, portArg = '0'] = process.argv.slice(2);
if (!configPath) {
  process.stderr.write('usage: node provider.mjs CONFIG.json [PORT] | --generate-jwks\n');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`provider: bad port ${portArg}\n`);
  process.exit(2);
}

let jwks;
if (config.jwks) {
  jwks = config.jwks;
} else if (config.jwks_file) {
  jwks = JSON.parse(readFileSync(config.jwks_file, 'utf8'));
} else {
  jwks = generateJwks();
}

const users = new Map();
for (const u of config.users ?? []) {
  if (!u.username || typeof u.password !== 'string') {
    throw new Error(`provider: a user needs username and password: ${JSON.stringify(u)}`);
  }
  users.set(u.username, u);
}
// sub → user (sub defaults to the user name)
const bySub = new Map([...users.values()].map((u) => [u.sub ?? u.username, u]));

const firstParty = new Set();
const clients = (config.clients ?? []).map((c) => {
  const { first_party: fp = false, ...metadata } = c;
  if (fp) firstParty.add(c.client_id);
  return metadata;
});

const ttl = config.ttl ?? {};
const seconds = (name, dflt) => (ttl[name] === undefined ? dflt : Number(ttl[name]));

// oidc-provider's own development interactions are off; its warnings about the defaults
// that a production deployment should change go to stderr (it writes them with
// console.warn), which is what a test prints when it fails.
const { default: Provider, errors } = await import('oidc-provider');

function htmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

// Pages without anything from the network (no web fonts: the tests' machines have none).
function page(title, body, id) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${htmlEscape(title)}</title>
<style>body{font-family:sans-serif;margin:2em}form{margin:1em 0}input{display:block;margin:.5em 0}</style>
</head>
<body id="${id}">
<h1>${htmlEscape(title)}</h1>
${body}
</body>
</html>`;
}

async function findAccount(ctx, sub) {
  const user = bySub.get(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      const claims = {
        sub,
        preferred_username: user.username,
      };
      if (user.name !== undefined) claims.name = user.name;
      if (user.email !== undefined) {
        claims.email = user.email;
        claims.email_verified = user.email_verified ?? true;
      }
      if (user.groups !== undefined) claims.groups = user.groups;
      if (user.org !== undefined) claims.org = user.org;
      return { ...claims, ...(user.extra_claims ?? {}) };
    },
  };
}

const providerConfig = {
  clients,
  jwks,
  findAccount,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Custom claims in the scopes a relay asks for; `org` is the operator's organisation.
  // acr, amr and auth_time are in the openid scope: oidc-provider puts a claim that belongs
  // to no scope (its default `acr: null`) in the ID token only when the claims parameter or
  // acr_values / max_age ask for it, where Keycloak and Entra always send them.
  claims: {
    sid: null,
    iss: null,
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['name', 'preferred_username', 'org'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  acrValues: config.acr_values ?? [ACR_MFA, ACR_PWD],
  // true: claims of the scopes only from userinfo when an access token for it is issued
  // (oidc-provider's default); false (ours): in the ID token too, as Keycloak and Entra do
  conformIdTokenClaims: config.conform_id_token_claims ?? false,
  pkce: { required: () => config.pkce_required ?? true },
  responseTypes: ['code'],
  clockTolerance: 0,
  ttl: {
    IdToken: () => seconds('id_token', 3600),
    AccessToken: () => seconds('access_token', 3600),
    AuthorizationCode: () => seconds('authorization_code', 60),
    DeviceCode: () => seconds('device_code', 600),
    RefreshToken: () => seconds('refresh_token', 24 * 3600),
    Interaction: () => seconds('interaction', 600),
    Session: () => seconds('session', 24 * 3600),
    Grant: () => seconds('grant', 24 * 3600),
  },
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, out, err) {
        let msg;
        if (err && (err.userCode || err.name === 'NoCodeError')) {
          msg = '<p id="error">The code you entered is incorrect. Try again.</p>';
        } else if (err && err.name === 'AbortedError') {
          msg = '<p id="error">The sign-in request was interrupted.</p>';
        } else if (err) {
          msg = `<p id="error">There was an error processing your request: ${htmlEscape(err.message)}</p>`;
        } else {
          msg = '<p>Enter the code displayed on your device.</p>';
        }
        ctx.body = page('Device sign-in', `${msg}${form}
<button type="submit" id="continue" form="op.deviceInputForm">Continue</button>`, 'device-input');
      },
      async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page('Confirm device', `<p>Client: <strong id="client">${htmlEscape(client.clientName ?? client.clientId)}</strong></p>
<p>The following code should be displayed on your device: <code id="user-code">${htmlEscape(userCode)}</code></p>
${form}
<button type="submit" id="continue" form="op.deviceConfirmForm">Continue</button>
<button type="submit" id="abort" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`, 'device-confirm');
      },
      async successSource(ctx) {
        emit('device_success', { client_id: ctx.oidc.client.clientId });
        ctx.body = page('Sign-in success', `<p id="success">Your sign-in with ${htmlEscape(ctx.oidc.client.clientName ?? ctx.oidc.client.clientId)} was successful; you can now close this page.</p>`, 'device-success');
      },
    },
  },
  async renderError(ctx, out, error) {
    emit('error', { error: out.error, error_description: out.error_description });
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${htmlEscape(out.error)}</p>
<p id="error-description">${htmlEscape(out.error_description ?? '')}</p>`, 'error-page');
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    return undefined;
  },
};

const provider = await (async () => {
  // the issuer needs the port: listen first, then build the provider on that port
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const chosen = server.address().port;
  const issuer = `http://127.0.0.1:${chosen}`;
  const p = new Provider(issuer, providerConfig);
  p.on('server_error', (ctx, err) => process.stderr.write(`provider: server_error ${err.stack}\n`));
  p.on('grant.success', (ctx) => emit('grant', {
    client_id: ctx.oidc.client?.clientId,
    grant_type: ctx.oidc.params?.grant_type,
  }));
  p.on('grant.error', (ctx, err) => emit('grant_error', {
    client_id: ctx.oidc.client?.clientId, error: err.error, error_description: err.error_description,
  }));
  p.server = server;
  p.issuerUrl = issuer;
  p.port = chosen;
  return p;
})();

// The interaction pages: login, and consent for clients that are not first-party.
async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, details, error) {
  const client = details.params.client_id;
  return page('Sign in', `<p>Sign in to <strong id="client">${htmlEscape(client)}</strong> at the Example Corp identity provider.</p>
${error ? `<p id="error">${htmlEscape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login" autocomplete="off">
<label>User name <input id="username" name="username" type="text" required autofocus></label>
<label>Password <input id="password" name="password" type="password" required></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit" id="cancel">Cancel</button></form>`, 'login');
}

function consentPage(uid, details) {
  const scopes = details.prompt.details.missingOIDCScope ?? [];
  return page('Allow access', `<p><strong id="client">${htmlEscape(details.params.client_id)}</strong> asks for: <span id="scopes">${htmlEscape(scopes.join(' '))}</span></p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit" id="allow">Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit" id="deny">Deny</button></form>`, 'consent');
}

async function grantConsent(details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  const id = await grant.save();
  emit('consent', { client_id: params.client_id, account: session.accountId });
  return { consent: { grantId: id } };
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

async function interaction(req, res) {
  const url = new URL(req.url, provider.issuerUrl);
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return false;
  const [, uid, action] = m;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Error', '<p id="error">interaction mismatch</p>', 'error-page'));
    return true;
  }
  const { prompt, params } = details;
  if (!action && req.method === 'GET') {
    if (prompt.name === 'login') {
      sendHtml(res, 200, loginPage(uid, details));
    } else if (prompt.name === 'consent' && firstParty.has(params.client_id)) {
      await provider.interactionFinished(req, res, await grantConsent(details), { mergeWithLastSubmission: true });
    } else if (prompt.name === 'consent') {
      sendHtml(res, 200, consentPage(uid, details));
    } else {
      sendHtml(res, 400, page('Error', `<p id="error">unknown prompt ${htmlEscape(prompt.name)}</p>`, 'error-page'));
    }
    return true;
  }
  if (req.method !== 'POST') return false;
  if (action === 'login') {
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    const user = users.get(username);
    if (!user || user.password !== (form.get('password') ?? '') || user.disabled) {
      const reason = !user ? 'unknown user' : user.disabled ? 'disabled' : 'wrong password';
      emit('login_failed', { username, reason, client_id: params.client_id });
      sendHtml(res, 200, loginPage(uid, details, 'Invalid user name or password.'));
      return true;
    }
    const mfa = Boolean(user.mfa);
    const login = {
      accountId: user.sub ?? user.username,
      acr: user.acr ?? (mfa ? ACR_MFA : ACR_PWD),
      amr: user.amr ?? (mfa ? ['pwd', 'otp'] : ['pwd']),
      remember: true,
    };
    emit('login', { username, sub: login.accountId, acr: login.acr, client_id: params.client_id });
    await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
    return true;
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    await provider.interactionFinished(req, res, await grantConsent(details), { mergeWithLastSubmission: true });
    return true;
  }
  if (action === 'abort') {
    emit('aborted', { client_id: params.client_id });
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return true;
  }
  return false;
}

// `tamper_id_token` (see the header): rewrites the token endpoint's ID tokens.
const TAMPERS = ['audience', 'foreign_key', 'foreign_kid', 'expired', 'replay'];
const tamper = config.tamper_id_token;
if (tamper !== undefined && !TAMPERS.includes(tamper)) {
  throw new Error(`provider: tamper_id_token must be one of ${TAMPERS.join(', ')}: ${tamper}`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const jwtPart = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));

// A compact JWT of `header` and `claims`, signed RS256 with `key` (a KeyObject).
function signJwt(header, claims, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

let firstIdToken;
function tampered(idToken) {
  if (tamper === 'replay') {
    firstIdToken ??= idToken;
    return firstIdToken;
  }
  const header = jwtPart(idToken, 0);
  const claims = jwtPart(idToken, 1);
  if (header.alg !== 'RS256') throw new Error(`provider: cannot re-sign ${header.alg}`);
  const own = createPrivateKey({ key: jwks.keys[0], format: 'jwk' });
  if (tamper === 'audience') {
    return signJwt(header, { ...claims, aud: config.tamper_audience ?? 'other-app' }, own);
  }
  if (tamper === 'expired') {
    const now = Math.floor(Date.now() / 1000);
    const exp = now - 600;
    const iat = exp - 3600;
    return signJwt(header, { ...claims, exp, iat, auth_time: iat }, own);
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = tamper === 'foreign_kid' ? randomUUID() : header.kid;
  return signJwt({ ...header, kid }, claims, privateKey);
}

if (tamper !== undefined) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token' && typeof ctx.body?.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: tampered(ctx.body.id_token) };
      emit('tampered', { kind: tamper });
    }
  });
}

const callback = provider.callback();
provider.server.on('request', (req, res) => {
  const handle = req.url.startsWith('/interaction/') ? interaction(req, res) : Promise.resolve(false);
  handle.then((done) => {
    if (!done) callback(req, res);
  }, (err) => {
    process.stderr.write(`provider: interaction failed: ${err.stack}\n`);
    if (err instanceof errors.SessionNotFound) {
      sendHtml(res, 400, page('Error', `<p id="error">${htmlEscape(err.message)}: ${htmlEscape(err.error_description ?? '')}</p>`, 'error-page'));
    } else if (!res.headersSent) {
      sendHtml(res, 500, page('Error', `<p id="error">${htmlEscape(err.message)}</p>`, 'error-page'));
    }
  });
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    provider.server.close();
    process.exit(0);
  });
}

emit('ready', {
  issuer: provider.issuerUrl,
  port: provider.port,
  kids: jwks.keys.map((k) => k.kid),
});

// SPDX-License-Identifier: AGPL-3.0-only
// The upstream OpenID Provider of tests/integration/test_upstream_oidc.py: a certified OpenID
// Provider (npm oidc-provider), in memory, with its development login and consent pages (any
// login name is an account: sub = the name, preferred_username = the name, name "User <name>",
// email <name>@example.org; CONFIG's claims_file, read at each request, overrides the claims
// of an account: {"<name>": {"name": ...}}). Usage: node op.mjs CONFIG.json (port, issuer,
// clients, keys, claims_file).
import fs from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  cookies: { keys: ['upstream-test-cookie-key'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        let overrides = {};
        if (config.claims_file && fs.existsSync(config.claims_file)) {
          overrides = JSON.parse(fs.readFileSync(config.claims_file, 'utf8'))[id] || {};
        }
        return {
          sub: id,
          preferred_username: id,
          name: `User ${id}`,
          email: `${id}@example.org`,
          email_verified: true,
          ...overrides,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // The profile claims in the ID token too (not only at userinfo).
  conformIdTokenClaims: false,
  clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
    jwtUserinfo: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
  },
});
provider.proxy = false;

provider.listen(Number(config.port), '127.0.0.1', () => {
  console.log(`ready ${config.port}`);
});

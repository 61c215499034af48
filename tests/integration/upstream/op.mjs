// SPDX-License-Identifier: AGPL-3.0-only
// The upstream OpenID Provider of tests/integration/test_upstream_oidc.py: a certified OpenID
// Provider (npm oidc-provider), in memory, with its development login and consent pages (any
// login name is an account: sub = the name, preferred_username = the name, name "User <name>",
// email <name>@example.org). Usage: node op.mjs CONFIG.json (port, issuer, clients, keys).
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
        return {
          sub: id,
          preferred_username: id,
          name: `User ${id}`,
          email: `${id}@example.org`,
          email_verified: true,
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

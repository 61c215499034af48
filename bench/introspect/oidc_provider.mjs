// SPDX-License-Identifier: AGPL-3.0-only
// Baseline for bench/introspect: a certified OpenID Provider (npm oidc-provider), in memory,
// with COUNT live access tokens minted up front. Their values go to TOKENS_FILE, one a line.
// Usage: node oidc_provider.mjs PORT COUNT TOKENS_FILE
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, count, tokensFile] = process.argv.slice(2);

// The bundled memory adapter is an LRU capped at 1000 entries; the bench needs every token live.
const stores = new Map();
class MapAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload) { stores.set(this.key(id), payload); }
  async find(id) { return stores.get(this.key(id)); }
  async findByUserCode() { return undefined; }
  async findByUid() { return undefined; }
  async consume(id) { const p = stores.get(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { stores.delete(this.key(id)); }
  async revokeByGrantId() {}
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: MapAdapter,
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }],
  features: {
    introspection: { enabled: true },
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: 24 * 3600 },
});

const client = await provider.Client.find('bench');
const out = fs.createWriteStream(tokensFile);
for (let i = 0; i < Number(count); i += 1) {
  const token = new provider.ClientCredentials({ client, scope: '' });
  out.write(`${await token.save()}\n`);
}
await new Promise((resolve) => out.end(resolve));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${port}`);
});

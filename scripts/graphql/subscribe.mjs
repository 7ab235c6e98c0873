// subscribe.mjs WS_URL TOKEN QUERY [stream]: one graphql-ws client (graphql-transport-ws)
// that connects with {token} in connection_init ("-" for none), subscribes to QUERY and
// prints one JSON line per happening: {"connected":true}, {"next":payload}, {"error":…},
// {"closed":code}. It exits after the first next, error or close; with "stream", after the
// first error or close only. cmd/plaza's GraphQL tests drive it.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query, mode] = process.argv.slice(2);
const say = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: false,
  retryAttempts: 0,
  connectionParams: token === '-' ? {} : { token },
  on: {
    connected: () => say({ connected: true }),
    closed: (e) => {
      say({ closed: e.code });
      process.exit(0);
    },
  },
});
client.subscribe({ query }, {
  next: (v) => {
    say({ next: v });
    if (mode !== 'stream') process.exit(0);
  },
  error: (e) => {
    say({ error: e instanceof Error ? e.message : e });
    process.exit(0);
  },
  complete: () => {},
});

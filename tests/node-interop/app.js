// The seed app (JXcore's express-session demo) as a plain Node app: express,
// express-session and connect-redis, with the options of wasmhost's seed app,
// so the two share sessions on one Redis with one secret
// (tests/integration/node_interop.rs runs both).
//
// Environment: SESSION_SECRET (required), REDIS_URL (default
// redis://127.0.0.1:6379), PORT (default 0: a free port). Once listening it
// prints exactly one line to stdout, `listening on http://127.0.0.1:<port>`;
// everything else goes to stderr.

import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const NOT_SET = "Not set. Go to '/set' to set value.";

// Fields only this app writes. JSON.stringify prints this object the same
// way every time (keys in insertion order, numbers in their shortest form),
// and on purpose in ways a JSON library that re-serialises would not: keys
// out of alphabetical order, a number JavaScript prints as `1e+21`, escapes,
// text outside ASCII.
const NODE_ONLY = {
  zeta: "keys are not in alphabetical order",
  nested: [1, 2, { a: null, b: [true, false, {}], c: [] }],
  unicode: "é✓ 😀 \u2028",
  escapes: "quote \" backslash \\ newline \n tab \t control \u0001 slash / </script>",
  big: 12345678901234567000,
  float: 0.1,
  exponent: 1e21,
  tiny: 5e-7,
  negative: -42.5,
  alpha: "",
};

const secret = process.env.SESSION_SECRET;
if (!secret) {
  console.error("app.js: SESSION_SECRET is not set");
  process.exit(1);
}

// At start a Redis that does not answer within about 2 s ends the app (exit
// status 1); once connected, the client reconnects by itself for ever.
let connected = false;
const client = createClient({
  url: process.env.REDIS_URL || "redis://127.0.0.1:6379",
  socket: {
    reconnectStrategy: (retries, cause) =>
      connected ? Math.min(50 * (retries + 1), 1000) : retries < 20 ? 100 : cause,
  },
});
client.on("error", (error) => console.error("redis client:", error.message));
client.on("ready", () => {
  connected = true;
});
try {
  await client.connect();
} catch (error) {
  console.error("app.js: cannot connect to Redis:", error.message);
  process.exit(1);
}

const app = express();
app.use(
  session({
    secret,
    resave: true,
    saveUninitialized: false,
    cookie: { maxAge: 900000 },
    store: new RedisStore({ client, prefix: "sess:" }),
  }),
);

app.get("/", (req, res) => {
  res.json({ foo: req.session.foo ?? NOT_SET, app: "node" });
});

app.get("/set", (req, res) => {
  req.session.foo = "bar";
  res.json({ message: "foo value set to 'bar' in session.", app: "node" });
});

// Answers the field's own JSON text, as JSON.stringify wrote it into the
// stored session.
app.get("/node-fields", (req, res) => {
  req.session.nodeOnly = NODE_ONLY;
  res.type("application/json").send(JSON.stringify(NODE_ONLY));
});

// As test-app's /visits.
app.get("/visits", (req, res) => {
  const visits = (req.session.visits ?? 0) + 1;
  req.session.visits = visits;
  res.json({ visits, app: "node" });
});

app.get("/logout", (req, res, next) => {
  req.session.destroy((error) => {
    if (error) return next(error);
    res.type("text/plain").send("bye");
  });
});

app.get("/dump", (req, res) => {
  res.json(req.session);
});

const server = app.listen(Number(process.env.PORT || 0), "127.0.0.1", (error) => {
  if (error) {
    console.error("app.js: cannot listen:", error.message);
    process.exit(1);
  }
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    client.quit().finally(() => process.exit(0));
  });
}

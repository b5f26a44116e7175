// uWebSockets.js peer (npm package `uwebsockets`, which ships uWS.js's binaries):
// node uws-server.js PORT. Protocol: see bench/servers/src/lib.rs. Fan-out uses uWS's own
// pub/sub (subscribe + app.publish), its idiomatic and fastest path.
//
// /echo-deflate and /room-deflate accept permessage-deflate with uWS's shared compressor and
// shared decompressor: no context takeover either way and no zlib state per connection, as
// endpoint's `compression = true`. uWS compresses only what is sent with `compress` = true (its
// send and publish default to false), so these routes pass it; there is no minimum size.
'use strict';
const uWS = require('uwebsockets');

const port = Number(process.argv[2]);
const common = {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  // The same 1 MiB per-connection outbound bound as endpoint's default queue.
  maxBackpressure: 1024 * 1024,
  idleTimeout: 0,
};
const decoder = new TextDecoder();
const app = uWS.App();
app.ws('/echo', {
  ...common,
  message: (ws, message, isBinary) => { ws.send(message, isBinary); },
});
app.ws('/room', {
  ...common,
  open: (ws) => { ws.getUserData().state = 0; },
  message: (ws, message, isBinary) => {
    const data = ws.getUserData();
    if (data.state === 0) {
      const what = decoder.decode(message);
      if (what === 'sub') { ws.subscribe('bench'); data.state = 1; }
      else if (what === 'pub') data.state = 2;
      ws.send('ok', false);
    } else if (data.state === 2 && isBinary) {
      app.publish('bench', message, true);
    }
  },
});
const deflate = {
  ...common,
  compression: uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR,
};
app.ws('/echo-deflate', {
  ...deflate,
  message: (ws, message, isBinary) => { ws.send(message, isBinary, true); },
});
app.ws('/room-deflate', {
  ...deflate,
  open: (ws) => { ws.getUserData().state = 0; },
  message: (ws, message, isBinary) => {
    const data = ws.getUserData();
    if (data.state === 0) {
      const what = decoder.decode(message);
      if (what === 'sub') { ws.subscribe('bench-deflate'); data.state = 1; }
      else if (what === 'pub') data.state = 2;
      ws.send('ok', false);
    } else if (data.state === 2) {
      app.publish('bench-deflate', message, isBinary, true);
    }
  },
});
app.listen('127.0.0.1', port, (token) => {
  if (!token) { console.error(`uws: cannot listen on ${port}`); process.exit(1); }
  console.log(`listening on 127.0.0.1:${port}`);
});

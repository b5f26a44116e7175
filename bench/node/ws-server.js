// Node `ws` peer: node ws-server.js PORT. Protocol: see bench/servers/src/lib.rs.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
const subs = new Set();

wss.on('connection', (ws, req) => {
  const path = req.url.split('?')[0];
  if (path === '/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else if (path === '/room') {
    let publisher = false;
    let hello = false;
    ws.on('message', (data, isBinary) => {
      if (!hello) {
        hello = true;
        const what = data.toString();
        if (what === 'sub') { subs.add(ws); ws.on('close', () => subs.delete(ws)); }
        else if (what === 'pub') publisher = true;
        ws.send('ok');
      } else if (publisher && isBinary) {
        for (const s of subs) s.send(data, { binary: true });
      }
    });
  } else {
    ws.close(1008, 'unknown path');
  }
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening on 127.0.0.1:${port}`));

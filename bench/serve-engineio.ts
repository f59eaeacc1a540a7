/** `node dist/bench/serve-engineio.js --port N`: Engine.IO polling, echo + broadcast + stats. */
import { createEngineIoServer } from './engineio-server.js';
import { exitWithParent, listenAt, listeningLine } from './serve-args.js';

const at = listenAt(process.argv.slice(2), process.env);
const port = await createEngineIoServer().listen(at.port, at.host);
exitWithParent();
console.log(listeningLine('engine.io', at.host, port));

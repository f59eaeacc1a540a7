/** `node dist/bench/serve-raw.js --port N`: the raw v1 long-poll server (the ceiling). */
import { createRawServer } from './raw-server.js';
import { exitWithParent, listenAt, listeningLine } from './serve-args.js';

const at = listenAt(process.argv.slice(2), process.env);
const port = await createRawServer().listen(at.port, at.host);
exitWithParent();
console.log(listeningLine('raw', at.host, port));

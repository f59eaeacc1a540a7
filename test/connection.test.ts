// The connection FSM, state x event, driven directly with a manual clock (no HTTP). The table
// itself is in fixtures/connection_table.ts: the gen_statem example runs the same cases.
import t from 'tap';
import { startConnection } from './fixtures/connection.js';
import { connectionTable } from './fixtures/connection_table.js';

connectionTable(t, startConnection);

/** Every attack case, in the order of issue 11's table. */
import type { AttackCase } from '../case.js';
import { burst } from './burst.js';
import { chatFlood } from './chat-flood.js';
import { absoluteForm, expectContinue } from './http-details.js';
import { hugePush } from './huge-push.js';
import { inboxAhead } from './inbox-ahead.js';
import { setupFlood } from './setup-flood.js';
import { slowReaders } from './slow-readers.js';
import { unackedBig } from './unacked-big.js';

export const CASES: readonly AttackCase[] = [inboxAhead, unackedBig, slowReaders, burst, chatFlood, setupFlood, hugePush, absoluteForm, expectContinue];

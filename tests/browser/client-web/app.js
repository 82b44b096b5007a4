// The page of tests/browser/client.test.mjs: the client (./pgfanout.js, served from clients/js by
// the second `http.static` directory) with everything it hands the application recorded in
// window.t, for the test to read.
import { connect, PgFanoutError } from './pgfanout.js';

const t = {
  events: {}, // topic -> [{id, event, data}]
  resyncs: [], // [{topic, reason}]
  states: [],
  errors: [],
  tokenCalls: 0,
  tokens: [], // what the token callback hands out, in turn (the last one again when used up)
  hub: null,
  connect(options = {}) {
    const { tokens, ...rest } = options;
    if (tokens) {
      t.tokens = tokens;
      rest.token = async () => {
        const i = Math.min(t.tokenCalls, t.tokens.length - 1);
        t.tokenCalls++;
        return t.tokens[i];
      };
    }
    t.hub = connect({ backoff: { initial: 100, max: 1000 }, ...rest });
    t.hub.on('state', (s) => {
      t.states.push(s);
      document.getElementById('state').textContent = s;
      document.getElementById('state').dataset.state = s;
    });
    t.hub.on('error', (e) => t.errors.push({ code: e.code, message: e.message }));
    return true;
  },
  subscribe(topic) {
    t.events[topic] = t.events[topic] || [];
    const sub = t.hub.subscribe(topic, {
      onEvent: (ev) => t.events[topic].push({ id: ev.id, event: ev.event, data: ev.data }),
      onResync: (topic, reason) => t.resyncs.push({ topic, reason }),
      onError: (e) => t.errors.push({ topic, code: e.code, message: e.message }),
    });
    return sub.ready().then(() => true);
  },
  async request(fn) {
    try {
      return { ok: true, value: await fn(t.hub) };
    } catch (e) {
      return { ok: false, code: e instanceof PgFanoutError ? e.code : 'exception', message: e.message };
    }
  },
};
window.t = t;
document.getElementById('state').textContent = 'ready';
document.getElementById('state').dataset.state = 'ready';

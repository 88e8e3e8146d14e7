/* global document, location, WebSocket, setTimeout, mermaid */
/**
 * The viewer page: calls from the server's /viewer websocket, drawn with mermaid. Text from calls
 * is only ever set with textContent; the one innerHTML is mermaid's SVG (strict security level).
 *
 * Stable hooks for tests and tools: li[data-call-id][data-status][data-connected] in the call
 * list, [data-testid="active-state"], g[data-state][data-active="true"] in the diagram,
 * ol[data-testid="event-log"] > li[data-kind] with [data-field] details, pre[data-testid="context"],
 * ol[data-testid="transcript"] > li[data-speaker] (caller or an agent) with [data-field="text"],
 * ul[data-testid="transitions"] > li[data-from][data-to] (data-last="true" on the last one taken).
 */
const $ = (selector) => document.querySelector(`[data-testid="${selector}"]`);
const calls = new Map();
let selectedId = null;
/** Once the user picks a call it stays selected; until then the newest call is shown. */
let pinned = false;
let drawnText = null;
let renders = 0;
let drawing = Promise.resolve();

mermaid.initialize({
  startOnLoad: false,
  securityLevel: 'strict',
  theme: 'neutral',
  themeVariables: { fontSize: '18px' },
  state: { useMaxWidth: false },
});

/** 1 = the diagram's natural size; null = fit the panel's width. */
let zoom = null;
/** Per call: the last transition seen, from one leaf state to another. */
const lastTransitions = new Map();
const leafStates = new Map();

function applyZoom() {
  const svg = $('diagram').querySelector('svg');
  if (!svg) return;
  const natural = svg.viewBox.baseVal.width || svg.getBBox().width;
  svg.style.width = zoom === null ? '100%' : `${Math.round(natural * zoom)}px`;
  svg.style.height = 'auto';
}

for (const button of document.querySelectorAll('[data-zoom]')) {
  button.addEventListener('click', () => {
    const svg = $('diagram').querySelector('svg');
    const natural = svg ? svg.viewBox.baseVal.width || 1 : 1;
    const current = zoom ?? (svg ? svg.getBoundingClientRect().width / natural : 1);
    const kind = button.getAttribute('data-zoom');
    zoom =
      kind === 'fit' ? null : Math.min(4, Math.max(0.25, current * (kind === 'in' ? 1.25 : 0.8)));
    applyZoom();
  });
}

function el(tag, attributes = {}, text = undefined) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const time = (ms) => new Date(ms).toLocaleTimeString();

function statusOf(call) {
  if (call.status === 'done') return 'ended';
  if (call.status !== 'active') return call.status;
  return call.connected ? 'live' : 'disconnected';
}

function callerOf(call) {
  return call.context && call.context.caller ? call.context.caller.number : undefined;
}

function renderList(sorted) {
  const list = $('call-list');
  list.replaceChildren(
    ...sorted.map((call) => {
      const item = el('li', {
        'data-call-id': call.id,
        'data-status': statusOf(call),
        'data-connected': call.connected,
        'aria-selected': call.id === selectedId,
      });
      const button = el('button', { type: 'button' });
      button.append(
        el('span', { class: `badge ${statusOf(call)}` }, statusOf(call)),
        ` ${call.states.join(', ') || '…'}`,
        el(
          'small',
          {},
          `${call.app}${call.pid ? ` pid ${call.pid}` : ''} · ${time(call.startedAt)}`,
        ),
      );
      const caller = callerOf(call);
      if (caller) button.append(el('small', { 'data-field': 'caller' }, `caller ${caller}`));
      button.addEventListener('click', () => {
        selectedId = call.id;
        pinned = true;
        render();
      });
      item.append(button);
      return item;
    }),
  );
  $('no-calls').hidden = sorted.length > 0;
}

/** Replace a list's items; it keeps following the newest unless the user scrolled up to read. */
function replaceFollowing(list, items) {
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.replaceChildren(...items);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderTranscript(call) {
  replaceFollowing(
    $('transcript'),
    (call.transcript || []).map((line) => {
      const item = el('li', { 'data-speaker': line.speaker, 'data-seq': line.seq });
      item.title = time(line.at);
      item.append(
        el('span', { class: 'speaker' }, line.speaker),
        ' ',
        el('span', { 'data-field': 'text' }, line.text),
      );
      return item;
    }),
  );
}

function renderLog(call) {
  replaceFollowing(
    $('event-log'),
    call.log.map((entry) => {
      const item = el('li', { 'data-kind': entry.kind, 'data-seq': entry.seq });
      item.append(
        el('time', {}, time(entry.at)),
        ' ',
        el('span', { class: 'kind' }, entry.kind),
        ' ',
        el('span', { class: 'title' }, entry.title),
      );
      for (const [key, value] of Object.entries(entry.fields || {})) {
        item.append(el('span', { 'data-field': key }, `${key}: ${value}`));
      }
      return item;
    }),
  );
}

/** Remember the last change of leaf state of each call: the transition to highlight. */
function trackTransition(call) {
  const leaf = call.states.at(-1);
  const before = leafStates.get(call.id);
  if (before !== undefined && leaf !== undefined && before !== leaf) {
    lastTransitions.set(call.id, { from: before, to: leaf });
  }
  if (leaf !== undefined) leafStates.set(call.id, leaf);
}

function renderTransitions(call) {
  const last = lastTransitions.get(call.id);
  const rows = (call.diagram ? call.diagram.transitions : []).map((t) => {
    // A transition declared on a parent state (reception's handoffs) is taken from its children.
    const isLast =
      Boolean(last) &&
      t.to === last.to &&
      (t.from === last.from || last.from.startsWith(`${t.from}.`));
    const item = el('li', { 'data-from': t.from, 'data-to': t.to, 'data-last': isLast });
    item.append(el('strong', {}, `${t.from} → ${t.to}`), ' ', el('span', {}, t.events.join(', ')));
    item.title = t.events.join('\n');
    return item;
  });
  $('transitions').replaceChildren(...rows);
}

/** Mark the active states (and their ancestors) on the drawn diagram. */
function markActive(call) {
  const last = lastTransitions.get(call.id);
  const active = new Set(call.states);
  const ancestors = new Set(
    call.states.flatMap((path) =>
      path
        .split('.')
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join('.')),
    ),
  );
  for (const node of $('diagram').querySelectorAll('[data-state]')) {
    const path = node.getAttribute('data-state');
    // The state the last transition came from, so the move just made can be seen.
    if (last && path === last.from) node.setAttribute('data-previous', 'true');
    else node.removeAttribute('data-previous');
    if (active.has(path)) node.setAttribute('data-active', 'true');
    else if (ancestors.has(path)) node.setAttribute('data-active', 'ancestor');
    else node.removeAttribute('data-active');
  }
}

function drawDiagram(call) {
  drawing = drawing.then(async () => {
    const current = calls.get(selectedId);
    if (!current || !current.diagram) return;
    const diagram = current.diagram;
    if (diagram.text !== drawnText) {
      const target = $('diagram');
      try {
        const { svg } = await mermaid.render(`diagram-${++renders}`, diagram.text);
        target.innerHTML = svg;
        // Mermaid 11 names a simple state's group "state-s4-12" and a composite state's "s4"
        // (the id given in the diagram's text): map s4 back to its state path.
        for (const node of target.querySelectorAll('g[id]')) {
          const match = /^(?:state-)?(s\d+)(?:-\d+)?$/.exec(node.id);
          if (match && diagram.states[match[1]]) {
            node.setAttribute('data-state', diagram.states[match[1]]);
          }
        }
        drawnText = diagram.text;
        applyZoom();
      } catch (error) {
        target.replaceChildren(el('p', {}, `The diagram could not be drawn: ${error}`));
        drawnText = null;
        return;
      }
    }
    markActive(calls.get(selectedId) || call);
  });
}

function render() {
  const sorted = [...calls.values()].sort((a, b) => b.startedAt - a.startedAt);
  if (!pinned || !calls.has(selectedId)) selectedId = sorted[0] ? sorted[0].id : null;
  renderList(sorted);
  const call = calls.get(selectedId);
  $('call').hidden = !call;
  if (!call) return;
  $('call').setAttribute('data-call-id', call.id);
  $('call').setAttribute('data-status', statusOf(call));
  $('call-title').textContent = `${call.machine || 'call'} ${call.id}`;
  $('active-state').textContent = call.states.join(', ');
  $('call-status').textContent = statusOf(call);
  $('call-status').className = `badge ${statusOf(call)}`;
  $('context').textContent = JSON.stringify(call.context, null, 2);
  renderTranscript(call);
  renderLog(call);
  renderTransitions(call);
  drawDiagram(call);
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/viewer`);
  const status = $('connection');
  socket.onopen = () => {
    status.textContent = 'connected';
    status.setAttribute('data-connected', 'true');
  };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === 'calls') {
      calls.clear();
      for (const call of data.calls) calls.set(call.id, call);
    } else if (data.type === 'call') calls.set(data.call.id, data.call);
    for (const call of calls.values()) trackTransition(call);
    render();
  };
  socket.onclose = () => {
    status.textContent = 'disconnected from the viewer server; retrying…';
    status.setAttribute('data-connected', 'false');
    setTimeout(connect, 1000);
  };
}

connect();

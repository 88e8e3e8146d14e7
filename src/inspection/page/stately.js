/* global document, location, window, WebSocket */
/**
 * Relay for /stately: the server's redacted messages (`/viewer?raw=1`) are posted to Stately's
 * inspector in the iframe, once it says it is ready, as @statelyai/inspect's own bridge does.
 * Messages are posted to https://stately.ai only.
 */
const STATELY = 'https://stately.ai';
const frame = document.querySelector('iframe');
const waiting = [];
let ready = false;

const post = (message) => frame.contentWindow.postMessage(message, STATELY);

window.addEventListener('message', (event) => {
  if (event.origin !== STATELY || !event.data || event.data.type !== '@statelyai.connected') return;
  ready = true;
  waiting.splice(0).forEach(post);
});

const socket = new WebSocket(`ws://${location.host}/viewer?raw=1`);
socket.onmessage = (message) => {
  for (const inspection of JSON.parse(message.data).messages) {
    if (ready) post(inspection);
    else if (waiting.push(inspection) > 1000) waiting.shift();
  }
};

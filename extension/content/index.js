// Content script entry (isolated world, document_start, top frames of http/https pages).
import { startRelay } from './relay.js';

startRelay({ win: window, connect: (name) => chrome.runtime.connect({ name }) });

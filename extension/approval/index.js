// Approval window: shows the requesting origin and the wallet, sends the user's decision to the background.
import { Target, BackgroundMsg } from '../shared/protocol.js';

const id = new URLSearchParams(location.search).get('id');
const $ = (sel) => document.getElementById(sel);

async function ask(type, extra) {
  const reply = await chrome.runtime.sendMessage({ target: Target.BACKGROUND, type, id, ...extra });
  if (!reply?.ok) throw new Error(reply?.error?.message ?? 'the extension did not answer');
  return reply.result;
}

function fail(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('approve').disabled = true;
}

async function decide(approve) {
  $('approve').disabled = true;
  $('reject').disabled = true;
  try {
    await ask(BackgroundMsg.APPROVAL_DECIDE, { approve });
    window.close();
  } catch (e) {
    fail(e.message);
  }
}

$('approve').addEventListener('click', () => decide(true));
$('reject').addEventListener('click', () => decide(false));

ask(BackgroundMsg.APPROVAL_GET)
  .then(({ origin, wallet }) => {
    $('origin').textContent = origin;
    $('wallet').textContent = wallet ?? 'not connected yet';
    $('note').textContent = wallet
      ? 'The site will see this wallet address and can message other wallets as it.'
      : 'After you approve, the site will ask your wallet to sign once to authorise this browser.';
    document.body.dataset.ready = 'true';
    $('approve').focus();
  })
  .catch((e) => fail(e.message));

import { api, ApiError } from './common.js';

const form = document.getElementById('login-form');
const homes = JSON.parse(document.getElementById('homes').textContent);
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const err = document.getElementById('login-error');
  err.hidden = true;
  try {
    const out = await api('auth/login', { method: 'POST', body: { username: form.username.value.trim(), password: form.password.value } });
    const next = new URLSearchParams(location.search).get('next');
    location.href = next && next.startsWith('/app') ? next : (homes[out.user.role] || '/app');
  } catch (ex) {
    err.textContent = ex instanceof ApiError && ex.status === 401 ? err.textContent : ex.message;
    err.hidden = false;
    form.password.select();
  }
});

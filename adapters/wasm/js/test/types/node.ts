// Node/browser use: options typed, the module's own init/auth.
import cloud = require('../../index');

const memory: { [k: string]: string } = {};
cloud.init({
  env: 'my-env-1a2b',
  appid: 'wx0123456789abcdef',
  baseUrl: 'http://127.0.0.1:8080',
  storage: {
    getItem: (k) => memory[k],
    setItem: (k, v) => { memory[k] = v; },
    removeItem: (k) => { delete memory[k]; },
  },
  login: () => Promise.resolve('a-code'),
});
const auth = cloud.auth();
const off = auth.onLoginStateChanged((s) => console.log(s && s.isAnonymousAuth));
auth.getLoginState().then((s) => s && s.user.uid.length).then(() => off());
// @ts-expect-error: env is required
cloud.init({});

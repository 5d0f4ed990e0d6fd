// A Mini Program's app.ts: install the facade into wx.cloud, then the usual init.
import { install, AuthError } from '../../index';

install({ baseUrl: 'https://auth.example.com', wasm: '/cloudbase-auth/cloudbase_auth.wasm' });

App({
  onLaunch() {
    wx.cloud.init({ env: 'my-env-1a2b' });
    // Native wx.cloud members stay typed and available.
    const call: typeof wx.cloud.callFunction = wx.cloud.callFunction;
    void call;
    wx.cloud.auth().onLoginStateChanged((state) => {
      console.log(state ? state.user.uid : 'signed out');
    });
    wx.cloud.auth().linkWithWeChat().catch((e: AuthError) => console.log(e.code, e.status));
  },
});

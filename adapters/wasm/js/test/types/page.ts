// The CloudBase guide's example page (pages/index/index.js), as TypeScript.
import type { AuthError, User } from '../../index';

Page({
  data: {
    isLoggedIn: false,
    userInfo: null as User | null,
  },

  onLoad() {
    this.checkLoginState();
  },

  async checkLoginState() {
    const auth = wx.cloud.auth();
    try {
      const res = await auth.getLoginState();
      if (res && res.user) {
        this.setData({
          isLoggedIn: true,
          userInfo: res.user,
        });
      }
    } catch (err) {
      console.log('Not logged in');
    }
  },

  async handleLogin() {
    const auth = wx.cloud.auth();
    try {
      await auth.signInAnonymously();
      this.checkLoginState();
    } catch (err) {
      console.error('Login failed:', err);
    }
  },

  async handleWeChatLogin() {
    const auth = wx.cloud.auth();
    const state = await auth.signInWithWeChat();
    const { user } = await auth.getUserInfo();
    console.log(state.loginType, state.credential.accessTokenExpire, user.nickName, user.openid);
  },

  async handleNickname(e: { detail: { value: string } }) {
    const auth = wx.cloud.auth();
    const user = auth.currentUser;
    if (!user) return;
    try {
      await user.update({ nickName: e.detail.value });
      this.checkLoginState();
    } catch (err) {
      const { code, errorDescription } = err as AuthError;
      console.error('Update failed:', code, errorDescription);
    }
  },

  async handleDeleteAccount() {
    const auth = wx.cloud.auth();
    const done: Promise<void> = auth.deleteMe();
    await done;
    this.setData({ isLoggedIn: false, userInfo: null });
  },

  async handleLogout() {
    const auth = wx.cloud.auth();
    try {
      const { revoked } = await auth.signOut();
      console.log('revoked on the server:', revoked);
      this.setData({
        isLoggedIn: false,
        userInfo: null,
      });
    } catch (err) {
      console.error('Logout failed:', err);
    }
  },
});

/** Mail providers whose addresses say nothing about a person's employer (organisation matching, the email comparison). */
export const FREE_MAIL_DOMAINS: ReadonlySet<string> = new Set([
  'gmail.com', 'googlemail.com', 'outlook.com', 'outlook.de', 'hotmail.com', 'hotmail.de', 'hotmail.co.uk', 'hotmail.fr', 'live.com',
  'live.de', 'live.co.uk', 'msn.com', 'yahoo.com', 'yahoo.de', 'yahoo.co.uk', 'yahoo.fr', 'ymail.com', 'icloud.com', 'me.com', 'mac.com',
  'aol.com', 'aol.de', 'gmx.de', 'gmx.net', 'gmx.at', 'gmx.ch', 'gmx.com', 'web.de', 't-online.de', 'freenet.de', 'arcor.de', 'posteo.de',
  'mailbox.org', 'proton.me', 'protonmail.com', 'pm.me', 'mail.com', 'mail.ru', 'yandex.ru', 'yandex.com', 'zoho.com', 'fastmail.com',
  'tutanota.com', 'orange.fr', 'free.fr', 'laposte.net', 'wanadoo.fr', 'libero.it', 'btinternet.com', 'qq.com', '163.com', 'naver.com',
]);

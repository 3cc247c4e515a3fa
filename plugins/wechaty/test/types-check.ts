// Compiled by `npm run check` (tsc --noEmit), never run: the declarations fit a real bot.
import { WechatyBuilder } from 'wechaty'
import WechatyExporterDefault, { WechatyExporter, type WechatyExporterOptions } from 'wechaty-exporter-plugin'

const options: WechatyExporterOptions = {
  name: 'alice',
  selfLog: '/var/log/bots/alice.self.log',
  delivery: { listen: '127.0.0.1:8790', tokenFile: '/etc/wechaty-exporter/plugin.token' },
  commands: { receiverUrl: 'http://127.0.0.1:9096', admins: ['wxid_admin'], tokenFile: '/etc/wechaty-exporter/receiver.token' },
  probe: { peer: 'bob_weixin', peerBot: 'bob', interval: '10m', jitter: 0.1 },
}
const bot = WechatyBuilder.build({ name: 'alice' })
const plugin = WechatyExporter(options)
bot.use(plugin)
bot.use(WechatyExporterDefault({ selfLog: '/tmp/x.log' }))
export async function address (): Promise<number | undefined> {
  const { delivery } = await plugin.ready()
  await plugin.probeNow()
  await plugin.close()
  return delivery?.port
}
// @ts-expect-error: admins is required with commands
WechatyExporter({ name: 'a', commands: { receiverUrl: 'http://x' } })

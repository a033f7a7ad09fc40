// aedes-broker.js: the aedes MQTT broker (npm "aedes", in-memory persistence) on one
// loopback port, for tests/brokers/test_aedes.py. Not part of panda2mqtt.
// Usage: node aedes-broker.js --port N [--host 127.0.0.1]
// Prints "ready port=N" once listening; stops on SIGTERM/SIGINT.
import net from 'node:net'
import { Aedes } from 'aedes'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const port = Number(opt('--port', '1883'))
const host = opt('--host', '127.0.0.1')

const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)
broker.on('clientError', (client, err) => console.log(`client ${client?.id}: ${err.message}`))
server.listen(port, host, () => console.log(`ready port=${server.address().port}`))

const stop = () => server.close(() => broker.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)

#!/usr/bin/python3
"""A JSON sensor (docs/protocol-json-sensor.md), written from the protocol document alone:
the device the json_sensor family's tests talk to, and a reference for anyone writing
one (run it by hand: `python3 tests/integration/json_sensor_device.py --port 8081`).

It serves ws://HOST:PORT/sensor; every connection gets the whole state first, then one
{"sensor": {...}} per change; {"sensor": {"interval": N}} from the gateway changes the
report interval and is answered with the state. Every frame received is kept (frames())
so a test can check what the gateway sent, byte for byte."""
import argparse
import asyncio
import json
import threading

import websockets

PATH = "/sensor"


class JsonSensor:
    def __init__(self, host="127.0.0.1", port=0, **state):
        self.state = {"id": "drybox-1", "name": "Dry box", "model": "ESP32-C3 + SHT40",
                      "fw": "1.2.0", "temperature": 24.5, "humidity": 38.0, "interval": 10}
        self.state.update(state)
        self.state = {k: v for k, v in self.state.items() if v is not None}
        self.received = []
        self.clients = set()
        self.connections = 0
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(host, port, started),
                                       daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the JSON sensor did not start")

    def _run(self, host, port, started):
        asyncio.set_event_loop(self.loop)

        async def refuse_other_paths(path, headers):
            if path != PATH:
                return 404, [], b"not here\n"
            return None

        async def main():
            self.server = await websockets.serve(self._serve, host, port,
                                                 process_request=refuse_other_paths)
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    async def _serve(self, ws, path=None):
        with self.lock:
            self.connections += 1
            self.clients.add(ws)
            first = json.dumps({"sensor": dict(self.state)})
        try:
            await ws.send(first)
            async for message in ws:
                with self.lock:
                    self.received.append(message)
                try:
                    asked = json.loads(message).get("sensor", {})
                except (ValueError, AttributeError):
                    continue
                if isinstance(asked.get("interval"), int):
                    self.set(interval=asked["interval"])
        except websockets.ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.clients.discard(ws)

    def set(self, **fields):
        """Change readings and push them (only what changed, as a device would)."""
        with self.lock:
            self.state.update(fields)
            frame = json.dumps({"sensor": fields})
            clients = list(self.clients)
        for ws in clients:
            asyncio.run_coroutine_threadsafe(ws.send(frame), self.loop)

    def frames(self):
        with self.lock:
            return list(self.received)

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.thread.join(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="a JSON sensor on a WebSocket")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--id", default="drybox-1")
    args = ap.parse_args()
    sensor = JsonSensor(args.host, args.port, id=args.id)
    print(f"serving ws://{args.host}:{sensor.port}{PATH}; Ctrl-C to stop", flush=True)
    try:
        sensor.thread.join()
    except KeyboardInterrupt:
        sensor.stop()

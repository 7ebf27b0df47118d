"""The ESP32 MicroPython (LoBo) thread example, without the hardware.

Run it as the device would: ``python3 -m mthread examples/device_demo.py`` (``make demo``).
Only the device's idioms are used: ``import _thread``, ``utime``, ``time.sleep_ms``. The LED
is printed state, the sensor gives simulated readings. It ends by itself in about 4 seconds.
"""
import _thread
import time

import utime

T0 = utime.ticks_ms()


def log(text):
    """One line, stamped with the milliseconds since start (one write, so lines never mix)."""
    print("%5d ms  %s\n" % (utime.ticks_diff(utime.ticks_ms(), T0), text), end="")


def led_thread(pin, period_ms):
    """Blink an 'LED'; can be suspended; ends on the EXIT notification."""
    _thread.allowsuspend(True)
    state = 0
    while True:
        if _thread.getnotification() == _thread.EXIT:
            log("LED: EXIT notification, LED off, ending")
            return
        state ^= 1
        log("LED on GPIO%d: %s" % (pin, "ON" if state else "off"))
        time.sleep_ms(period_ms)


def sensor_thread(interval_ms):
    """Send simulated temperature readings to the REPL thread; runs until killed."""
    _thread.allowsuspend(True)
    reading = 215  # tenths of a degree
    try:
        while True:
            reading += (utime.ticks_us() % 7) - 3
            _thread.sendmsg(_thread.getReplID(), "temperature %.1f C" % (reading / 10))
            time.sleep(interval_ms / 1000)  # time.sleep: kill ends it at once
    finally:
        print("          sensor: killed, cleaning up\n", end="")


def waiter_thread():
    """Wait for notifications and report each one; a message tells what the last one meant."""
    while True:
        value = _thread.wait()
        if value == _thread.EXIT:
            log("waiter: EXIT notification, ending")
            return
        log("waiter: notification %d" % value)
        _thread.sendmsg(_thread.getReplID(), value * 2)


def show_messages(wait_ms):
    """What the device's REPL prints for messages to it, here printed by the script."""
    deadline = utime.ticks_add(utime.ticks_ms(), wait_ms)
    while utime.ticks_diff(deadline, utime.ticks_ms()) > 0:
        kind, sender, msg = _thread.getmsg(max(1, utime.ticks_diff(deadline, utime.ticks_ms())))
        if kind:
            log('[Message from thread "%s"] %s' % (_thread.getThreadName(sender), msg))


def main():
    log("REPL thread id %d, name %s" % (_thread.getReplID(), _thread.getSelfName()))
    _thread.stack_size(16 * 1024)  # a device-sized stack: clamped up to the safe minimum
    led = _thread.start_new_thread("LED", led_thread, (2, 400))
    sensor = _thread.start_new_thread("Sensor", sensor_thread, (500,))
    waiter = _thread.start_new_thread("Waiter", waiter_thread, ())
    show_messages(700)
    _thread.list()

    log("suspend LED: %s" % _thread.suspend(led))
    show_messages(900)
    log("LED state: %s" % ("suspended" if _thread.status(led) == _thread.SUSPENDED else "?"))
    log("resume LED: %s" % _thread.resume(led))

    for value in (1, 2, 3):
        _thread.notify(waiter, value)
        show_messages(150)
    log("stop Waiter (EXIT notification): %s" % _thread.stop(waiter))
    show_messages(600)

    log("kill Sensor: %s" % _thread.kill(sensor))
    show_messages(200)
    for row in _thread.list(False):
        log("thread %d %-10s stack %d, max used %d" % (row[0], row[2], row[4], row[5]))

    _thread.stop(led)
    while _thread.status(led) != _thread.TERMINATED:
        time.sleep_ms(10)
    log("done; threads left: %s" % ", ".join(row[2] for row in _thread.list(False)))


main()

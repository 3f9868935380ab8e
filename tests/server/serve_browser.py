"""The chat page of fp4rt serve in headless Chromium (Selenium, the system's
chromium + chromium-driver): a message gets a streamed reply with its reasoning
in a collapsible block and a tokens/s line; the stop button ends a long reply
(and the server's slot is freed); New chat clears the conversation.

    serve_browser.py BASE_URL
Prints "serve_browser: N passed, N failed"; exit 1 on any failure.
"""
import sys
import time

from serve_client import check, finish, metric
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

def running(base):
    return metric(base, "fp4rt_requests_running")


def main(base):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        wait = WebDriverWait(d, 60)
        d.get(base + "/")
        check(d.title == "fp4rt chat", f"title {d.title}")
        wait.until(lambda _: "qwen35-kjv-10m" in d.find_element(By.ID, "model").text)

        def setv(id_, v):
            e = d.find_element(By.ID, id_)
            e.clear()
            e.send_keys(v)

        # a short reply with reasoning: streamed text, a collapsible reasoning block, stats
        setv("max_tokens", "40")
        setv("temperature", "0")
        d.find_element(By.ID, "system").send_keys("You are a scribe.")
        d.find_element(By.ID, "input").send_keys("Who begat Enoch?")
        d.find_element(By.ID, "send").click()
        wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, ".msg.assistant.done"))
        a = d.find_element(By.CSS_SELECTOR, ".msg.assistant")
        r = a.find_elements(By.CSS_SELECTOR, "details.reasoning")
        check(r and r[0].find_element(By.TAG_NAME, "summary").text == "Reasoning", "no reasoning block")
        stats = d.find_element(By.ID, "stats").text
        check("tokens/s" in stats and "40 tokens" in stats, f"stats: {stats}")
        check(a.find_element(By.CSS_SELECTOR, ".content").text or r, "empty reply")
        # the user's message and the reply are in the page
        check(d.find_element(By.CSS_SELECTOR, ".msg.user").text == "Who begat Enoch?", "user message")

        # a long reply, stopped: the text stops growing and the server's slot is free
        setv("max_tokens", "100000")
        d.find_element(By.ID, "think").click()  # thinking off: the answer streams as content
        d.find_element(By.ID, "input").send_keys("Tell me everything.")
        d.find_element(By.ID, "send").click()
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2 and
                   len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1].find_element(
                       By.CSS_SELECTOR, ".content").text) > 20)
        check(d.find_element(By.ID, "send").get_attribute("disabled") is not None, "send enabled while streaming")
        d.find_element(By.ID, "stop").click()
        wait.until(lambda _: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant.done")) == 2)
        second = d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1].find_element(By.CSS_SELECTOR, ".content")
        n1 = len(second.text)
        time.sleep(0.5)
        check(len(second.text) == n1, "the stopped reply still grows")
        check("stopped" in d.find_element(By.ID, "stats").text, f"stats: {d.find_element(By.ID, 'stats').text}")
        free = False
        for _ in range(40):
            if running(base) == "0":
                free = True
                break
            time.sleep(0.05)
        check(free, "the stopped reply still runs on the server")
        check(d.find_element(By.ID, "stop").get_attribute("disabled") is not None, "stop enabled after stopping")

        # new chat
        d.find_element(By.ID, "new").click()
        check(d.find_elements(By.CSS_SELECTOR, ".msg") == [], "New chat left messages")
    finally:
        d.quit()


if __name__ == "__main__":
    main(sys.argv[1])
    finish("serve_browser")

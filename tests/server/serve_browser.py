"""The chat page of fp4rt serve in headless Chromium (Selenium, the system's
chromium + chromium-driver): a message gets a streamed reply with its reasoning
in a collapsible block and a tokens/s line; the stop button ends a long reply
(and the server's slot is freed); New chat clears the conversation. Images:
attached with the file picker they show as thumbnails (a click removes one);
a text-only model answers with an error bubble naming the vision tower; a
model with a tower (VISION_BASE_URL) gets the image and replies.

    serve_browser.py BASE_URL VISION_BASE_URL IMAGE_FILE
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


def attach(d, path):
    d.find_element(By.ID, "attach").send_keys(path)
    WebDriverWait(d, 30).until(lambda _: d.find_elements(By.CSS_SELECTOR, "#pending img.thumb"))


def images_case(d, base, vbase, image):
    wait = WebDriverWait(d, 60)
    # the text-only model: two images attached, one removed by a click; the reply
    # is an error naming the vision tower, and the message leaves the history
    d.get(base + "/")
    attach(d, image)
    attach(d, image)
    check(len(d.find_elements(By.CSS_SELECTOR, "#pending img.thumb")) == 2, "two thumbnails pending")
    d.find_elements(By.CSS_SELECTOR, "#pending img.thumb")[1].click()
    check(len(d.find_elements(By.CSS_SELECTOR, "#pending img.thumb")) == 1, "a click removes a thumbnail")
    d.find_element(By.ID, "input").send_keys("What is this?")
    d.find_element(By.ID, "send").click()
    wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, ".msg.error"))
    err = d.find_element(By.CSS_SELECTOR, ".msg.error").text
    check("vision tower" in err, f"text-only model, image: {err}")
    check(d.find_elements(By.CSS_SELECTOR, "#pending img.thumb") == [], "the pending images were sent")
    check(len(d.find_elements(By.CSS_SELECTOR, ".msg.user img.thumb")) == 1, "the user bubble shows the image")
    # a model with a vision tower: the image goes in, a reply comes back
    d.get(vbase + "/")
    d.find_element(By.ID, "max_tokens").send_keys("4")
    attach(d, image)
    d.find_element(By.ID, "send").click()  # an image alone, no text, is a message too
    wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, ".msg.assistant.done"))
    check(d.find_elements(By.CSS_SELECTOR, ".msg.error") == [],
          "vision model: " + " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".msg.error")))
    stats = d.find_element(By.ID, "stats").text
    check("4 tokens" in stats, f"vision model stats: {stats}")
    d.find_element(By.ID, "max_tokens").clear()


def main(base, vbase, image):
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

        images_case(d, base, vbase, image)
    finally:
        d.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
    finish("serve_browser")

from speakerfeed.cli import run

run()

/* sim_ptalk.h - the PTalk dial-in mode of panda2mqtt-sim ("panda2mqtt-sim ptalk ..."). */
#ifndef PANDA2MQTT_SIM_PTALK_H
#define PANDA2MQTT_SIM_PTALK_H

/* argv[0] is "ptalk"; returns the exit code. */
int sim_ptalk_main(int argc, char **argv);

#endif

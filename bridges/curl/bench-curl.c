#include <iops-curl.h>
int main(void){return 77;}
